//! Request bodies in Kubernetes' protobuf encoding, for the kinds kubectl's typed
//! `create` commands send that way (`kubectl create configmap|secret|namespace|
//! serviceaccount|deployment|service|job`). Other kinds are refused with 415, as a
//! server without their protobuf schema would.
//!
//! The envelope is `k8s\0` + runtime.Unknown{typeMeta=1, raw=2}; `raw` is the
//! object's message, read here with the field numbers (from Kubernetes'
//! generated.proto) of the fields those commands set; others are skipped.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Map, Value, json};

use crate::status::ApiError;

/// How one field of a message becomes JSON.
enum Field {
    Text(&'static str),
    Bytes(&'static str),
    Bool(&'static str),
    TextMap(&'static str),
    BytesMap(&'static str),
    Texts(&'static str),
    /// A non-pointer integer: 0 is Go's zero value, sent always, omitted in JSON.
    Int(&'static str),
    /// A pointer integer (`replicas`): sent only when set, so 0 is a value.
    OptionalInt(&'static str),
    IntOrString(&'static str),
    /// An embedded message; an empty one (a zero-valued struct) is left out.
    Message(&'static str, &'static [(u64, Field)]),
    /// A repeated message.
    Messages(&'static str, &'static [(u64, Field)]),
}

const OBJECT_META: &[(u64, Field)] = &[
    (1, Field::Text("name")),
    (2, Field::Text("generateName")),
    (3, Field::Text("namespace")),
    (11, Field::TextMap("labels")),
    (12, Field::TextMap("annotations")),
    (14, Field::Texts("finalizers")),
];

const CONFIG_MAP: &[(u64, Field)] = &[
    (1, Field::Message("metadata", OBJECT_META)),
    (2, Field::TextMap("data")),
    (3, Field::BytesMap("binaryData")),
    (4, Field::Bool("immutable")),
];

const SECRET: &[(u64, Field)] = &[
    (1, Field::Message("metadata", OBJECT_META)),
    (2, Field::BytesMap("data")),
    (3, Field::Text("type")),
    (4, Field::TextMap("stringData")),
    (5, Field::Bool("immutable")),
];

const NAMESPACE: &[(u64, Field)] = &[
    (1, Field::Message("metadata", OBJECT_META)),
    (
        2,
        Field::Message("spec", &[(1, Field::Texts("finalizers"))]),
    ),
];

const SERVICE_ACCOUNT: &[(u64, Field)] = &[
    (1, Field::Message("metadata", OBJECT_META)),
    (4, Field::Bool("automountServiceAccountToken")),
];

const LABEL_SELECTOR: &[(u64, Field)] = &[
    (1, Field::TextMap("matchLabels")),
    (
        2,
        Field::Messages(
            "matchExpressions",
            &[
                (1, Field::Text("key")),
                (2, Field::Text("operator")),
                (3, Field::Texts("values")),
            ],
        ),
    ),
];

const CONTAINER: &[(u64, Field)] = &[
    (1, Field::Text("name")),
    (2, Field::Text("image")),
    (3, Field::Texts("command")),
    (4, Field::Texts("args")),
    (5, Field::Text("workingDir")),
    (
        6,
        Field::Messages(
            "ports",
            &[
                (1, Field::Text("name")),
                (2, Field::Int("hostPort")),
                (3, Field::Int("containerPort")),
                (4, Field::Text("protocol")),
                (5, Field::Text("hostIP")),
            ],
        ),
    ),
    (
        7,
        Field::Messages(
            "env",
            &[(1, Field::Text("name")), (2, Field::Text("value"))],
        ),
    ),
    (14, Field::Text("imagePullPolicy")),
];

const POD_TEMPLATE: &[(u64, Field)] = &[
    (1, Field::Message("metadata", OBJECT_META)),
    (
        2,
        Field::Message(
            "spec",
            &[
                (2, Field::Messages("containers", CONTAINER)),
                (3, Field::Text("restartPolicy")),
                (8, Field::Text("serviceAccountName")),
            ],
        ),
    ),
];

const DEPLOYMENT: &[(u64, Field)] = &[
    (1, Field::Message("metadata", OBJECT_META)),
    (
        2,
        Field::Message(
            "spec",
            &[
                (1, Field::OptionalInt("replicas")),
                (2, Field::Message("selector", LABEL_SELECTOR)),
                (3, Field::Message("template", POD_TEMPLATE)),
                (4, Field::Message("strategy", &[(1, Field::Text("type"))])),
                (5, Field::Int("minReadySeconds")),
                (6, Field::OptionalInt("revisionHistoryLimit")),
                (9, Field::OptionalInt("progressDeadlineSeconds")),
            ],
        ),
    ),
];

const SERVICE: &[(u64, Field)] = &[
    (1, Field::Message("metadata", OBJECT_META)),
    (
        2,
        Field::Message(
            "spec",
            &[
                (
                    1,
                    Field::Messages(
                        "ports",
                        &[
                            (1, Field::Text("name")),
                            (2, Field::Text("protocol")),
                            (3, Field::Int("port")),
                            (4, Field::IntOrString("targetPort")),
                            (5, Field::Int("nodePort")),
                            (6, Field::Text("appProtocol")),
                        ],
                    ),
                ),
                (2, Field::TextMap("selector")),
                (3, Field::Text("clusterIP")),
                (4, Field::Text("type")),
                (7, Field::Text("sessionAffinity")),
                (10, Field::Text("externalName")),
                (11, Field::Text("externalTrafficPolicy")),
            ],
        ),
    ),
];

const JOB: &[(u64, Field)] = &[
    (1, Field::Message("metadata", OBJECT_META)),
    (
        2,
        Field::Message(
            "spec",
            &[
                (1, Field::OptionalInt("parallelism")),
                (2, Field::OptionalInt("completions")),
                (3, Field::OptionalInt("activeDeadlineSeconds")),
                (4, Field::Message("selector", LABEL_SELECTOR)),
                (6, Field::Message("template", POD_TEMPLATE)),
                (7, Field::OptionalInt("backoffLimit")),
                (8, Field::OptionalInt("ttlSecondsAfterFinished")),
            ],
        ),
    ),
];

const TYPE_META: &[(u64, Field)] = &[(1, Field::Text("apiVersion")), (2, Field::Text("kind"))];

const UNKNOWN: &[(u64, Field)] = &[
    (1, Field::Message("typeMeta", TYPE_META)),
    (2, Field::Bytes("raw")),
];

fn malformed() -> ApiError {
    ApiError::bad_request("the body of the request could not be decoded: malformed protobuf")
}

/// Reads protobuf wire format: (field number, value) pairs.
struct Reader<'a> {
    data: &'a [u8],
}

enum Wire<'a> {
    Varint(u64),
    Bytes(&'a [u8]),
    Fixed,
}

impl<'a> Reader<'a> {
    fn varint(&mut self) -> Result<u64, ApiError> {
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let (&byte, rest) = self.data.split_first().ok_or_else(malformed)?;
            self.data = rest;
            value |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(malformed())
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], ApiError> {
        if n > self.data.len() {
            return Err(malformed());
        }
        let (head, rest) = self.data.split_at(n);
        self.data = rest;
        Ok(head)
    }

    fn next(&mut self) -> Result<Option<(u64, Wire<'a>)>, ApiError> {
        if self.data.is_empty() {
            return Ok(None);
        }
        let key = self.varint()?;
        let wire = match key & 7 {
            0 => Wire::Varint(self.varint()?),
            1 => {
                self.take(8)?;
                Wire::Fixed
            }
            2 => {
                let n = usize::try_from(self.varint()?).map_err(|_| malformed())?;
                Wire::Bytes(self.take(n)?)
            }
            5 => {
                self.take(4)?;
                Wire::Fixed
            }
            _ => return Err(malformed()),
        };
        Ok(Some((key >> 3, wire)))
    }
}

fn text(bytes: &[u8]) -> Result<Value, ApiError> {
    String::from_utf8(bytes.to_vec())
        .map(Value::from)
        .map_err(|_| malformed())
}

/// A map entry message: key = 1, value = 2.
fn entry(bytes: &[u8], value_as_text: bool) -> Result<(String, Value), ApiError> {
    let mut reader = Reader { data: bytes };
    let (mut key, mut value) = (String::new(), Value::from(""));
    while let Some((number, wire)) = reader.next()? {
        if let Wire::Bytes(b) = wire {
            match number {
                1 => key = String::from_utf8(b.to_vec()).map_err(|_| malformed())?,
                2 if value_as_text => value = text(b)?,
                2 => value = Value::from(STANDARD.encode(b)),
                _ => {}
            }
        }
    }
    Ok((key, value))
}

fn message(bytes: &[u8], schema: &[(u64, Field)]) -> Result<Value, ApiError> {
    let mut out = Map::new();
    let mut reader = Reader { data: bytes };
    while let Some((number, wire)) = reader.next()? {
        let Some((_, field)) = schema.iter().find(|(n, _)| *n == number) else {
            continue;
        };
        match (field, wire) {
            // Empty is protobuf's default: the same as absent.
            (Field::Text(_), Wire::Bytes([])) => {}
            (Field::Text(name), Wire::Bytes(b)) => {
                out.insert((*name).into(), text(b)?);
            }
            (Field::Bytes(name), Wire::Bytes(b)) => {
                out.insert((*name).into(), Value::from(STANDARD.encode(b)));
            }
            (Field::Bool(name), Wire::Varint(v)) => {
                out.insert((*name).into(), Value::from(v != 0));
            }
            (Field::TextMap(name) | Field::BytesMap(name), Wire::Bytes(b)) => {
                let (k, v) = entry(b, matches!(field, Field::TextMap(_)))?;
                let map = out.entry(*name).or_insert_with(|| json!({}));
                map[k] = v;
            }
            (Field::Texts(name), Wire::Bytes(b)) => {
                let list = out.entry(*name).or_insert_with(|| json!([]));
                list.as_array_mut()
                    .expect("created as a list")
                    .push(text(b)?);
            }
            (Field::Int(_), Wire::Varint(0)) => {}
            // int32 and int64 alike: negative values are sign-extended to 64 bits.
            (Field::Int(name) | Field::OptionalInt(name), Wire::Varint(v)) => {
                out.insert((*name).into(), Value::from(v as i64));
            }
            (Field::IntOrString(name), Wire::Bytes(b)) => {
                out.insert((*name).into(), int_or_string(b)?);
            }
            (Field::Message(name, inner), Wire::Bytes(b)) => {
                let value = message(b, inner)?;
                if value.as_object().is_some_and(|m| !m.is_empty()) {
                    out.insert((*name).into(), value);
                }
            }
            (Field::Messages(name, inner), Wire::Bytes(b)) => {
                let list = out.entry(*name).or_insert_with(|| json!([]));
                list.as_array_mut()
                    .expect("created as a list")
                    .push(message(b, inner)?);
            }
            _ => return Err(malformed()),
        }
    }
    Ok(Value::Object(out))
}

/// intstr.IntOrString: type = 1 (0 int, 1 string), intVal = 2, strVal = 3.
fn int_or_string(bytes: &[u8]) -> Result<Value, ApiError> {
    let mut reader = Reader { data: bytes };
    let (mut is_string, mut int, mut string) = (false, 0i64, Value::from(""));
    while let Some((number, wire)) = reader.next()? {
        match (number, wire) {
            (1, Wire::Varint(t)) => is_string = t == 1,
            (2, Wire::Varint(v)) => int = v as i64,
            (3, Wire::Bytes(b)) => string = text(b)?,
            _ => {}
        }
    }
    Ok(if is_string { string } else { Value::from(int) })
}

/// Decodes a `application/vnd.kubernetes.protobuf` body into the object's JSON.
pub fn decode(body: &[u8]) -> Result<Value, ApiError> {
    let unknown = body.strip_prefix(b"k8s\0").ok_or_else(malformed)?;
    let unknown = message(unknown, UNKNOWN)?;
    let api_version = unknown["typeMeta"]["apiVersion"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let kind = unknown["typeMeta"]["kind"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let schema = match (api_version.as_str(), kind.as_str()) {
        ("v1", "ConfigMap") => CONFIG_MAP,
        ("v1", "Secret") => SECRET,
        ("v1", "Namespace") => NAMESPACE,
        ("v1", "ServiceAccount") => SERVICE_ACCOUNT,
        ("v1", "Service") => SERVICE,
        ("apps/v1", "Deployment") => DEPLOYMENT,
        ("batch/v1", "Job") => JOB,
        _ => {
            return Err(ApiError::unsupported_media_type(
                "application/vnd.kubernetes.protobuf",
            ));
        }
    };
    let raw = STANDARD
        .decode(unknown["raw"].as_str().unwrap_or_default())
        .map_err(|_| malformed())?;
    let mut object = message(&raw, schema)?;
    object["apiVersion"] = json!(api_version);
    object["kind"] = json!(kind);
    Ok(object)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_what_kubectl_create_configmap_sends() {
        // Recorded from `kubectl create configmap kept --from-literal=A=1 -v=9`.
        let body: &[u8] = &[
            0x6b, 0x38, 0x73, 0x00, 0x0a, 0x0f, 0x0a, 0x02, 0x76, 0x31, 0x12, 0x09, 0x43, 0x6f,
            0x6e, 0x66, 0x69, 0x67, 0x4d, 0x61, 0x70, 0x12, 0x1e, 0x0a, 0x14, 0x0a, 0x04, 0x6b,
            0x65, 0x70, 0x74, 0x12, 0x00, 0x1a, 0x00, 0x22, 0x00, 0x2a, 0x00, 0x32, 0x00, 0x38,
            0x00, 0x42, 0x00, 0x12, 0x06, 0x0a, 0x01, 0x41, 0x12, 0x01, 0x31, 0x1a, 0x00, 0x22,
            0x00,
        ];
        let object = decode(body).unwrap();
        assert_eq!(object["apiVersion"], "v1");
        assert_eq!(object["kind"], "ConfigMap");
        assert_eq!(object["metadata"]["name"], "kept");
        assert_eq!(object["data"], json!({"A": "1"}));
    }

    #[test]
    fn decodes_what_kubectl_create_deployment_service_and_job_send() {
        // Recorded from kubectl 1.33 `-v=9`.
        let deployment = decode(include_bytes!(
            "../testdata/kubectl-create-deployment.pb" // web --image=nginx --port=8080 --replicas=2
        ))
        .unwrap();
        let labels = json!({"app": "web"});
        assert_eq!(
            deployment,
            json!({"apiVersion": "apps/v1", "kind": "Deployment",
                   "metadata": {"name": "web", "labels": labels},
                   "spec": {"replicas": 2, "selector": {"matchLabels": labels},
                            "template": {"metadata": {"labels": labels},
                                         "spec": {"containers": [{"name": "nginx", "image": "nginx",
                                                                  "ports": [{"containerPort": 8080}]}]}}}})
        );
        let service = decode(include_bytes!(
            "../testdata/kubectl-create-service.pb" // clusterip websvc --tcp=80:8080
        ))
        .unwrap();
        assert_eq!(
            service["spec"],
            json!({"ports": [{"name": "80-8080", "protocol": "TCP", "port": 80, "targetPort": 8080}],
                   "selector": {"app": "websvc"}, "type": "ClusterIP"})
        );
        let job = decode(include_bytes!(
            "../testdata/kubectl-create-job.pb" // hello --image=busybox -- echo hi
        ))
        .unwrap();
        assert_eq!(
            job["spec"],
            json!({"template": {"spec": {"containers": [{"name": "hello", "image": "busybox",
                                                         "command": ["echo", "hi"]}],
                                         "restartPolicy": "Never"}}})
        );
    }

    #[test]
    fn other_kinds_and_garbage_are_refused() {
        assert_eq!(decode(b"not protobuf").unwrap_err().code, 400);
        let deployment = [
            b"k8s\0".as_slice(),
            &[0x0a, 0x14, 0x0a, 0x07],
            b"apps/v1",
            &[0x12, 0x09],
            b"Deploymen",
        ]
        .concat();
        assert!(decode(&deployment).is_err());
    }
}
