//! The order objects are applied in: as few sequential steps as Kubernetes needs (as
//! kapp orders them). Every step waits for a round trip to the API server, and on a
//! real one each write takes 10-15 ms, so a step that nothing depends on is time lost.

use std::collections::HashSet;

/// An object's step in the apply order; objects of one step go in parallel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Rank {
    /// Namespaces and CustomResourceDefinitions: the rest may live in the one or be
    /// served by the other.
    Foundation,
    /// What pods consume or are admitted under, which must exist before a controller
    /// creates them: ServiceAccounts, RBAC, quotas and policies, ConfigMaps, Secrets,
    /// storage.
    PodInputs,
    /// Everything else (Services, workloads, Jobs, Ingresses, autoscalers, disruption
    /// budgets, custom resources whose definition the server has): nothing among them
    /// has to exist before another is written, controllers reconcile as they appear.
    Rest,
    /// Kinds defined by a CustomResourceDefinition of this input: once it is Established.
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
/// whose kinds wait for them even when the group looks built-in (Gateway API).
pub fn rank(group: &str, kind: &str, input_crd_groups: &HashSet<String>) -> Rank {
    if input_crd_groups.contains(group) {
        return Rank::Custom;
    }
    if !is_built_in_group(group) {
        return Rank::Rest;
    }
    match kind {
        "Namespace" | "CustomResourceDefinition" => Rank::Foundation,
        "ServiceAccount"
        | "Role"
        | "ClusterRole"
        | "RoleBinding"
        | "ClusterRoleBinding"
        | "ResourceQuota"
        | "LimitRange"
        | "PriorityClass"
        | "NetworkPolicy"
        | "ConfigMap"
        | "Secret"
        | "StorageClass"
        | "PersistentVolume"
        | "PersistentVolumeClaim" => Rank::PodInputs,
        _ => Rank::Rest,
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
    fn three_steps_for_built_in_kinds() {
        let got = ranks(
            &[
                ("", "Namespace"),
                ("apiextensions.k8s.io", "CustomResourceDefinition"),
            ],
            &[],
        );
        assert_eq!(got, [Rank::Foundation; 2]);
        let got = ranks(
            &[
                ("", "ServiceAccount"),
                ("rbac.authorization.k8s.io", "ClusterRoleBinding"),
                ("", "ConfigMap"),
                ("", "Secret"),
                ("", "PersistentVolumeClaim"),
            ],
            &[],
        );
        assert_eq!(got, [Rank::PodInputs; 5]);
        let got = ranks(
            &[
                ("", "Service"),
                ("apps", "Deployment"),
                ("apps", "StatefulSet"),
                ("batch", "Job"),
                ("networking.k8s.io", "Ingress"),
                ("autoscaling", "HorizontalPodAutoscaler"),
                ("policy", "PodDisruptionBudget"),
                ("", "Endpoints"),
            ],
            &[],
        );
        assert_eq!(got, [Rank::Rest; 8]);
        assert!(Rank::Foundation < Rank::PodInputs && Rank::PodInputs < Rank::Rest);
    }

    #[test]
    fn custom_resources_wait_only_for_a_definition_in_the_input() {
        // Served already (cert-manager installed): nothing to wait for.
        let got = ranks(
            &[
                ("cert-manager.io", "ClusterIssuer"),
                ("cluster.x-k8s.io", "Cluster"),
            ],
            &[],
        );
        assert_eq!(got, [Rank::Rest, Rank::Rest]);
        let got = ranks(&[("cert-manager.io", "Certificate")], &["cert-manager.io"]);
        assert_eq!(got, [Rank::Custom]);
        // Gateway API looks built-in but is served by CRDs, here from the input.
        let got = ranks(
            &[("gateway.networking.k8s.io", "Gateway")],
            &["gateway.networking.k8s.io"],
        );
        assert_eq!(got, [Rank::Custom]);
        assert!(Rank::Rest < Rank::Custom);
    }
}
