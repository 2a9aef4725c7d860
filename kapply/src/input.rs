//! Reading and checking the whole input before anything is written.

use kpipe_core::object::MAX_OBJECT_BYTES;
use kpipe_core::stream::{self, Yaml11};
use kpipe_core::{Document, Error, Result};
use std::collections::HashMap;
use std::path::Path;

/// Extensions read from a directory, as `kubectl apply -f DIR` does.
const MANIFEST_EXTENSIONS: &[&str] = &["yaml", "yml", "json"];

/// The files a `-f` argument names: itself, `-`, or a directory's manifests sorted by name.
pub fn expand(path: &str) -> Result<Vec<String>> {
    if path == "-" || !Path::new(path).is_dir() {
        return Ok(vec![path.to_owned()]);
    }
    let entries =
        std::fs::read_dir(path).map_err(|e| Error::input(format!("{path}: cannot read: {e}")))?;
    let mut files = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| Error::input(format!("{path}: cannot read: {e}")))?;
        let file = entry.path();
        let is_manifest = file
            .extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| MANIFEST_EXTENSIONS.contains(&e));
        if is_manifest && file.is_file() {
            files.push(file.to_string_lossy().into_owned());
        }
    }
    files.sort();
    Ok(files)
}

/// Reads every source (stdin when none is given) into one list of documents.
pub fn read_all(paths: &[String]) -> Result<Vec<Document>> {
    let paths: Vec<String> = if paths.is_empty() {
        vec!["-".into()]
    } else {
        paths.to_vec()
    };
    let stdin_count = paths.iter().filter(|p| *p == "-").count();
    if stdin_count > 1 {
        return Err(Error::input("-f - (standard input) can be given only once"));
    }
    let mut docs = Vec::new();
    for path in &paths {
        for file in expand(path)? {
            docs.extend(stream::read_with(&file, Yaml11::Reject)?);
        }
    }
    if docs.is_empty() {
        return Err(Error::input(format!(
            "no objects in the input ({})",
            paths.join(", ")
        )));
    }
    Ok(docs)
}

/// What server-side apply needs of every object, checked before the first request.
pub fn check(docs: &[Document]) -> Result<()> {
    let mut seen: HashMap<(String, String, Option<String>, String), &Document> = HashMap::new();
    for doc in docs {
        let id = doc.id();
        if doc.value["metadata"]["name"]
            .as_str()
            .is_none_or(str::is_empty)
        {
            let why = if doc.value["metadata"]["generateName"].is_string() {
                "has generateName but no name: server-side apply needs metadata.name"
            } else {
                "has no metadata.name"
            };
            return Err(Error::input(format!("{}: {} {why}", doc.place(), id.kind)));
        }
        let size = serde_json::to_vec(&doc.value).map_or(0, |v| v.len());
        if size > MAX_OBJECT_BYTES {
            return Err(Error::input(format!(
                "{}: {id} is {size} bytes, over the API server's limit of {MAX_OBJECT_BYTES}",
                doc.place()
            )));
        }
        let key = (
            id.group().to_owned(),
            id.kind.clone(),
            id.namespace.clone(),
            id.name.clone(),
        );
        if let Some(first) = seen.insert(key, doc) {
            return Err(Error::input(format!(
                "{}: {id} appears twice (also {}); apply each object once",
                doc.place(),
                first.place()
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn docs(text: &str) -> Vec<Document> {
        stream::parse("in.yaml", text).unwrap()
    }

    #[test]
    fn names_are_required() {
        let err = check(&docs(
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {generateName: x-}\n",
        ))
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "in.yaml: document 1 (line 1): ConfigMap has generateName but no name: server-side apply needs metadata.name"
        );
        assert_eq!(err.exit_code(), 2);
        let err = check(&docs("---\napiVersion: v1\nkind: ConfigMap\n")).unwrap_err();
        assert_eq!(
            err.to_string(),
            "in.yaml: document 1 (line 2): ConfigMap has no metadata.name"
        );
    }

    #[test]
    fn duplicates_are_refused() {
        let text = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n---\napiVersion: v1\nkind: Secret\nmetadata: {name: a}\n\
                    ---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n";
        let err = check(&docs(text)).unwrap_err().to_string();
        assert_eq!(
            err,
            "in.yaml: document 3 (line 9): ConfigMap/a appears twice (also in.yaml: document 1 (line 1)); apply each object once"
        );
    }

    #[test]
    fn oversized_objects_are_refused() {
        let big = "x".repeat(MAX_OBJECT_BYTES);
        let text =
            format!("apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: a}}\ndata: {{k: {big}}}\n");
        let err = check(&docs(&text)).unwrap_err().to_string();
        assert!(err.contains("over the API server's limit"), "{err}");
    }

    #[test]
    fn directories_give_their_manifests_sorted() {
        let dir = std::env::temp_dir().join(format!("kapply-expand-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        for name in ["b.yml", "a.yaml", "c.json", "notes.txt"] {
            std::fs::write(dir.join(name), "").unwrap();
        }
        let files = expand(dir.to_str().unwrap()).unwrap();
        let names: Vec<String> = files
            .iter()
            .map(|f| {
                Path::new(f)
                    .file_name()
                    .unwrap()
                    .to_string_lossy()
                    .into_owned()
            })
            .collect();
        assert_eq!(names, ["a.yaml", "b.yml", "c.json"]);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
