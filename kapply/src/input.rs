//! Reading the input: files, directories (as kubectl walks them), stdin, URLs
//! ([`crate::fetch`]) and what `kubectl kustomize` renders.

use kpipe_core::stream;
use kpipe_core::{Document, Error, Result};
use std::path::Path;
use tokio::time::Instant;

/// Extensions read from a directory, as `kubectl apply -f DIR` does.
const MANIFEST_EXTENSIONS: &[&str] = &["yaml", "yml", "json"];

/// The files a `-f` argument names: itself, `-`, or a directory's manifests (with
/// `recursive`, those of its subdirectories too, as kubectl's -R), in the order
/// kubectl's `filepath.Walk` visits them: by name, a subdirectory where its name sorts.
/// As there, symbolic links are not followed to directories: a link to a file is read,
/// one to a directory inside the tree is skipped (or fails to read, named `*.yaml`), and
/// `-f LINK` to a directory is refused (`-f LINK/` reads it).
pub fn expand(path: &str, recursive: bool) -> Result<Vec<String>> {
    let is_dir = std::fs::symlink_metadata(path).is_ok_and(|m| m.is_dir());
    if path == "-" || !is_dir {
        if Path::new(path).is_dir() {
            return Err(Error::input(format!(
                "{path}: cannot read: a symbolic link to a directory, which kubectl does not \
                 follow either (give {path}/ to read the directory)"
            )));
        }
        return Ok(vec![path.to_owned()]);
    }
    let mut files = Vec::new();
    walk(Path::new(path), recursive, &mut files)?;
    Ok(files)
}

fn walk(dir: &Path, recursive: bool, files: &mut Vec<String>) -> Result<()> {
    let shown = dir.display();
    let cannot = |e: std::io::Error| Error::input(format!("{shown}: cannot read: {e}"));
    let mut entries = std::fs::read_dir(dir)
        .and_then(Iterator::collect::<std::io::Result<Vec<_>>>)
        .map_err(cannot)?;
    entries.sort_by_key(std::fs::DirEntry::file_name);
    for entry in entries {
        let file = entry.path();
        // The entry itself, not what a link points to.
        if entry.file_type().map_err(cannot)?.is_dir() {
            if recursive {
                walk(&file, recursive, files)?;
            }
            continue;
        }
        let is_manifest = file
            .extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| MANIFEST_EXTENSIONS.contains(&e));
        if is_manifest {
            files.push(file.to_string_lossy().into_owned());
        }
    }
    Ok(())
}

/// Whether a `-f` argument is a URL, which kubectl reads over HTTP(S).
fn is_url(path: &str) -> bool {
    path.starts_with("https://") || path.starts_with("http://")
}

/// Reads every source (stdin when none is given) into one list of documents.
pub async fn read_all(
    paths: &[String],
    recursive: bool,
    deadline: Option<Instant>,
) -> Result<Vec<Document>> {
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
        if is_url(path) {
            docs.extend(stream::parse(
                path,
                &crate::fetch::fetch(path, deadline).await?,
            )?);
            continue;
        }
        for file in expand(path, recursive)? {
            docs.extend(stream::read(&file)?);
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

/// `-k DIR`: the objects `kubectl kustomize DIR` renders, or `kustomize build DIR` where
/// kubectl is not on PATH (kapply has no kustomize of its own). Its messages become
/// kapply's (through the redacting writer: a kustomization may hold secret literals).
pub fn kustomize(dir: &str) -> Result<Vec<Document>> {
    let on_path = |name: &str| {
        std::env::var_os("PATH").and_then(|path| {
            std::env::split_paths(&path)
                .map(|d| d.join(name))
                .find(|f| f.is_file())
        })
    };
    let (program, args, command) = if let Some(kubectl) = on_path("kubectl") {
        (kubectl, ["kustomize", dir], "kubectl kustomize")
    } else if let Some(kustomize) = on_path("kustomize") {
        (kustomize, ["build", dir], "kustomize build")
    } else {
        return Err(Error::input(format!(
            "-k {dir}: neither kubectl nor kustomize is on PATH: install one of them, or \
             pipe `kustomize build {dir}` into kapply"
        )));
    };
    let out = std::process::Command::new(&program)
        .args(args)
        .stdin(std::process::Stdio::null())
        .output()
        .map_err(|e| Error::runtime(format!("-k {dir}: cannot run {}: {e}", program.display())))?;
    if !out.status.success() {
        let why = String::from_utf8_lossy(&out.stderr);
        return Err(Error::input(format!(
            "-k {dir}: {command} failed ({}):\n{}",
            out.status,
            why.trim_end()
        )));
    }
    let source = format!("{dir} ({command})");
    let docs = stream::parse(&source, &stream::text_of(&source, out.stdout)?)?;
    if docs.is_empty() {
        return Err(Error::input(format!("no objects in the input ({source})")));
    }
    Ok(docs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directories_give_their_manifests_sorted() {
        let dir = std::env::temp_dir().join(format!("kapply-expand-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        for name in ["b.yml", "a.yaml", "c.json", "notes.txt"] {
            std::fs::write(dir.join(name), "").unwrap();
        }
        std::fs::create_dir_all(dir.join("sub")).unwrap();
        std::fs::write(dir.join("sub/d.yaml"), "").unwrap();
        assert_eq!(expand(dir.to_str().unwrap(), true).unwrap().len(), 4);
        let files = expand(dir.to_str().unwrap(), false).unwrap();
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
