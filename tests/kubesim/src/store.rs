//! The object store: what etcd is to the real server. One resourceVersion counter,
//! a bounded history of changes for watches to resume from, and a broadcast of new
//! changes to the open watches.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::ops::Bound;
use std::sync::Arc;

use serde_json::Value;
use tokio::sync::broadcast;

/// Changes kept for watches to resume from; older resourceVersions get 410 Expired.
pub const HISTORY_LIMIT: usize = 4096;

/// Where an object lives: its resource (group + plural), namespace ("" for
/// cluster-scoped objects) and name.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Key {
    pub group: String,
    pub plural: String,
    pub namespace: String,
    pub name: String,
}

/// Changes a watch has missed plus a receiver for those still to come.
pub type WatchStart = (Vec<Arc<Event>>, broadcast::Receiver<Arc<Event>>);

/// One change, as a watch reports it.
#[derive(Debug, Clone)]
pub struct Event {
    pub rv: u64,
    pub kind: &'static str,
    pub key: Key,
    pub object: Value,
    /// The object before a MODIFIED change, for watches whose selector it left or entered.
    pub previous: Option<Value>,
}

pub struct Store {
    objects: BTreeMap<Key, Value>,
    /// Owner uid -> the objects whose ownerReferences name it: what the garbage
    /// collector's graph is to the real cluster, kept so deletes need no full scan.
    dependents: HashMap<String, BTreeSet<Key>>,
    /// uid -> where that object is, for the collector's "does the owner still exist".
    uids: HashMap<String, Key>,
    rv: u64,
    history: VecDeque<Arc<Event>>,
    /// Watches from a resourceVersion below this one have missed changes.
    oldest: u64,
    tx: broadcast::Sender<Arc<Event>>,
}

impl Default for Store {
    fn default() -> Self {
        Store::new()
    }
}

impl Store {
    pub fn new() -> Store {
        let (tx, _) = broadcast::channel(HISTORY_LIMIT);
        Store {
            objects: BTreeMap::new(),
            dependents: HashMap::new(),
            uids: HashMap::new(),
            rv: 1,
            history: VecDeque::new(),
            oldest: 1,
            tx,
        }
    }

    pub fn resource_version(&self) -> u64 {
        self.rv
    }

    /// Forgets the history so far, as etcd compaction does: watches must start from now.
    pub fn compact(&mut self) {
        self.history.clear();
        self.oldest = self.rv;
    }

    pub fn get(&self, key: &Key) -> Option<&Value> {
        self.objects.get(key)
    }

    /// Objects of one resource, in one namespace or all, with their keys, in key
    /// order and after `after` if given: a range of the ordered map, so the cost
    /// does not grow with other resources' objects.
    pub fn entries<'a>(
        &'a self,
        group: &'a str,
        plural: &'a str,
        namespace: Option<&'a str>,
        after: Option<&Key>,
    ) -> impl Iterator<Item = (&'a Key, &'a Value)> + 'a {
        let start = match after {
            Some(key) => Bound::Excluded(key.clone()),
            None => Bound::Included(Key {
                group: group.to_string(),
                plural: plural.to_string(),
                namespace: namespace.unwrap_or_default().to_string(),
                name: String::new(),
            }),
        };
        self.objects
            .range((start, Bound::Unbounded))
            .take_while(move |(k, _)| {
                k.group == group
                    && k.plural == plural
                    && namespace.is_none_or(|ns| k.namespace == ns)
            })
    }

    /// Objects of one resource, in one namespace or all.
    pub fn list<'a>(
        &'a self,
        group: &'a str,
        plural: &'a str,
        namespace: Option<&'a str>,
    ) -> impl Iterator<Item = &'a Value> + 'a {
        self.entries(group, plural, namespace, None).map(|(_, v)| v)
    }

    pub fn keys(&self) -> impl Iterator<Item = &Key> {
        self.objects.keys()
    }

    /// Stores an object under a new resourceVersion and tells the watches.
    pub fn put(&mut self, key: Key, mut object: Value) -> Value {
        self.rv += 1;
        object["metadata"]["resourceVersion"] = Value::from(self.rv.to_string());
        self.index_owners(&key, &object, true);
        let previous = self.objects.insert(key.clone(), object.clone());
        if let Some(previous) = &previous {
            self.unindex_stale_owners(&key, previous, &object);
        }
        let kind = if previous.is_some() {
            "MODIFIED"
        } else {
            "ADDED"
        };
        self.record(kind, key, object.clone(), previous);
        object
    }

    /// Removes an object; the DELETED event carries a new resourceVersion.
    pub fn remove(&mut self, key: &Key) -> Option<Value> {
        let mut object = self.objects.remove(key)?;
        self.index_owners(key, &object, false);
        self.rv += 1;
        object["metadata"]["resourceVersion"] = Value::from(self.rv.to_string());
        self.record("DELETED", key.clone(), object.clone(), None);
        Some(object)
    }

    /// The objects whose ownerReferences name the owner with `uid`.
    pub fn dependents_of(&self, uid: &str) -> Vec<Key> {
        self.dependents
            .get(uid)
            .map(|keys| keys.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// Where the object with this uid is, if it exists.
    pub fn key_of_uid(&self, uid: &str) -> Option<&Key> {
        self.uids.get(uid)
    }

    fn index_owners(&mut self, key: &Key, object: &Value, add: bool) {
        if let Some(uid) = object["metadata"]["uid"].as_str() {
            if add {
                self.uids.insert(uid.to_string(), key.clone());
            } else {
                self.uids.remove(uid);
            }
        }
        for uid in owner_uids(object) {
            if add {
                self.dependents.entry(uid).or_default().insert(key.clone());
            } else if let Some(keys) = self.dependents.get_mut(&uid) {
                keys.remove(key);
                if keys.is_empty() {
                    self.dependents.remove(&uid);
                }
            }
        }
    }

    /// Drops the index entries of owners an update took out of ownerReferences.
    fn unindex_stale_owners(&mut self, key: &Key, previous: &Value, object: &Value) {
        let now: BTreeSet<String> = owner_uids(object).collect();
        for uid in owner_uids(previous).filter(|u| !now.contains(u)) {
            if let Some(keys) = self.dependents.get_mut(&uid) {
                keys.remove(key);
                if keys.is_empty() {
                    self.dependents.remove(&uid);
                }
            }
        }
    }

    fn record(&mut self, kind: &'static str, key: Key, object: Value, previous: Option<Value>) {
        let event = Arc::new(Event {
            rv: self.rv,
            kind,
            key,
            object,
            previous,
        });
        if self.history.len() == HISTORY_LIMIT
            && let Some(dropped) = self.history.pop_front()
        {
            self.oldest = dropped.rv;
        }
        self.history.push_back(event.clone());
        // No receivers is fine: nobody is watching.
        let _ = self.tx.send(event);
    }

    /// The changes after `rv` and a receiver for those still to come, or Err with
    /// the oldest resourceVersion still known when `rv` is too old.
    pub fn watch_from(&self, rv: u64) -> Result<WatchStart, u64> {
        if rv < self.oldest {
            return Err(self.oldest);
        }
        let past = self.history.iter().filter(|e| e.rv > rv).cloned().collect();
        Ok((past, self.tx.subscribe()))
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Event>> {
        self.tx.subscribe()
    }

    /// Every object, for `--state`.
    pub fn snapshot(&self) -> Vec<(Key, Value)> {
        self.objects
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }

    /// Loads saved objects, keeping the resourceVersion above every saved one.
    pub fn restore(&mut self, objects: Vec<(Key, Value)>) {
        for (key, object) in objects {
            let rv = object["metadata"]["resourceVersion"]
                .as_str()
                .and_then(|s| s.parse().ok())
                .unwrap_or(0);
            self.rv = self.rv.max(rv);
            self.index_owners(&key, &object, true);
            self.objects.insert(key, object);
        }
        self.compact();
    }
}

/// The uids an object's ownerReferences name.
fn owner_uids(object: &Value) -> impl Iterator<Item = String> + '_ {
    object["metadata"]["ownerReferences"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|r| r["uid"].as_str().map(String::from))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn key(name: &str) -> Key {
        Key {
            group: String::new(),
            plural: "configmaps".into(),
            namespace: "default".into(),
            name: name.into(),
        }
    }

    #[test]
    fn a_list_is_exactly_its_resource_and_namespace() {
        let mut store = Store::new();
        let at = |group: &str, plural: &str, namespace: &str, name: &str| Key {
            group: group.into(),
            plural: plural.into(),
            namespace: namespace.into(),
            name: name.into(),
        };
        for k in [
            at("", "configmaps", "a", "x"),
            at("", "configmaps", "b", "y"),
            at("", "configmaps", "b", "z"),
            at("", "configmapsx", "b", "w"),
            at("", "configmap", "b", "v"),
            at("", "namespaces", "", "b"),
            at("apps", "configmaps", "b", "u"),
        ] {
            let name = k.name.clone();
            store.put(k, json!({"metadata": {"name": name}}));
        }
        let names = |group: &str, plural: &str, namespace: Option<&str>| -> Vec<String> {
            store
                .list(group, plural, namespace)
                .map(|o| o["metadata"]["name"].as_str().unwrap().to_string())
                .collect()
        };
        assert_eq!(names("", "configmaps", Some("b")), ["y", "z"]);
        assert_eq!(names("", "configmaps", None), ["x", "y", "z"]);
        assert_eq!(names("", "configmaps", Some("c")), Vec::<String>::new());
        assert_eq!(names("", "namespaces", None), ["b"]);
        assert_eq!(names("apps", "configmaps", None), ["u"]);
    }

    #[test]
    fn watch_resumes_from_history_and_expires_when_compacted() {
        let mut store = Store::new();
        let start = store.resource_version();
        store.put(key("a"), json!({"metadata": {"name": "a"}}));
        store.put(key("a"), json!({"metadata": {"name": "a"}}));
        let (past, _) = store.watch_from(start).unwrap();
        assert_eq!(
            past.iter().map(|e| e.kind).collect::<Vec<_>>(),
            ["ADDED", "MODIFIED"]
        );
        store.compact();
        assert_eq!(
            store.watch_from(start).unwrap_err(),
            store.resource_version()
        );
        assert!(store.remove(&key("a")).is_some());
        assert!(store.get(&key("a")).is_none());
    }
}
