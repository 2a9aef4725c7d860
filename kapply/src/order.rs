//! The order objects are applied in: what others depend on goes first.

use std::collections::HashSet;

/// An object's place in the apply order; objects of one rank go in parallel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Rank {
    Namespace,
    CustomResourceDefinition,
    /// Service accounts, RBAC and the namespace policies pods are admitted under.
    Access,
    ConfigMap,
    Secret,
    Storage,
    Service,
    Workload,
    Job,
    Ingress,
    Autoscaler,
    DisruptionBudget,
    /// Built-in kinds the list above does not place.
    OtherBuiltIn,
    /// Kinds served by a CustomResourceDefinition; theirs must be Established first.
    Custom,
}

/// Groups served by Kubernetes itself whose names have no dot.
const DOTLESS_BUILT_IN_GROUPS: &[&str] =
    &["", "apps", "batch", "autoscaling", "policy", "extensions"];

/// Whether `group` belongs to Kubernetes itself rather than to an add-on's CRDs.
pub fn is_built_in_group(group: &str) -> bool {
    DOTLESS_BUILT_IN_GROUPS.contains(&group)
        || group.ends_with(".k8s.io") && !group.ends_with(".x-k8s.io")
}

/// The rank of a kind; `input_crd_groups` are the groups the input's own CRDs define,
/// whose kinds are custom even when the group looks built-in (Gateway API).
pub fn rank(group: &str, kind: &str, input_crd_groups: &HashSet<String>) -> Rank {
    if input_crd_groups.contains(group) || !is_built_in_group(group) {
        return Rank::Custom;
    }
    match kind {
        "Namespace" => Rank::Namespace,
        "CustomResourceDefinition" => Rank::CustomResourceDefinition,
        "ServiceAccount" | "Role" | "ClusterRole" | "RoleBinding" | "ClusterRoleBinding"
        | "ResourceQuota" | "LimitRange" | "PriorityClass" | "NetworkPolicy" => Rank::Access,
        "ConfigMap" => Rank::ConfigMap,
        "Secret" => Rank::Secret,
        "StorageClass" | "PersistentVolume" | "PersistentVolumeClaim" => Rank::Storage,
        "Service" => Rank::Service,
        "Deployment"
        | "StatefulSet"
        | "DaemonSet"
        | "ReplicaSet"
        | "ReplicationController"
        | "Pod" => Rank::Workload,
        "Job" | "CronJob" => Rank::Job,
        "IngressClass" | "Ingress" => Rank::Ingress,
        "HorizontalPodAutoscaler" => Rank::Autoscaler,
        "PodDisruptionBudget" => Rank::DisruptionBudget,
        _ => Rank::OtherBuiltIn,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ranks(objects: &[(&str, &str)], crd_groups: &[&str]) -> Vec<Rank> {
        let groups = crd_groups.iter().map(|g| g.to_string()).collect();
        objects.iter().map(|(g, k)| rank(g, k, &groups)).collect()
    }

    #[test]
    fn follows_the_documented_order() {
        let documented = [
            ("", "Namespace"),
            ("apiextensions.k8s.io", "CustomResourceDefinition"),
            ("", "ServiceAccount"),
            ("", "ConfigMap"),
            ("", "Secret"),
            ("", "PersistentVolumeClaim"),
            ("", "Service"),
            ("apps", "Deployment"),
            ("batch", "Job"),
            ("networking.k8s.io", "Ingress"),
            ("autoscaling", "HorizontalPodAutoscaler"),
            ("policy", "PodDisruptionBudget"),
            ("cert-manager.io", "Certificate"),
        ];
        let got = ranks(&documented, &[]);
        let mut sorted = got.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(
            got, sorted,
            "ranks must strictly increase along the documented order"
        );
    }

    #[test]
    fn rbac_shares_a_rank_and_workloads_share_one() {
        let got = ranks(
            &[
                ("rbac.authorization.k8s.io", "ClusterRoleBinding"),
                ("", "ServiceAccount"),
            ],
            &[],
        );
        assert_eq!(got, [Rank::Access, Rank::Access]);
        let got = ranks(
            &[
                ("apps", "StatefulSet"),
                ("apps", "DaemonSet"),
                ("apps", "Deployment"),
            ],
            &[],
        );
        assert_eq!(got, [Rank::Workload; 3]);
    }

    #[test]
    fn add_on_groups_are_custom() {
        let got = ranks(
            &[
                ("cert-manager.io", "ClusterIssuer"),
                ("cluster.x-k8s.io", "Cluster"),
                ("", "Endpoints"),
            ],
            &[],
        );
        assert_eq!(got, [Rank::Custom, Rank::Custom, Rank::OtherBuiltIn]);
        // Gateway API looks built-in but is served by CRDs, here from the input.
        let got = ranks(
            &[("gateway.networking.k8s.io", "Gateway")],
            &["gateway.networking.k8s.io"],
        );
        assert_eq!(got, [Rank::Custom]);
    }
}
