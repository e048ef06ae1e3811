//! `file_info`: size, times, kind and permissions of a file or directory, without
//! opening it (so a FIFO or device is described, never read).

use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
use std::path::Path;
use std::time::SystemTime;

use mcp_server_runtime::{Roots, ToolError, confine_path};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::paths::display_path;

/// Arguments of `file_info`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
pub struct FileInfoParams {
    /// The file or directory; relative to the first root.
    pub path: String,
}

/// What `file_info` found.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct FileInfo {
    /// The resolved path, relative to the first root when inside it.
    pub path: String,
    /// file, directory, symlink, fifo, socket, block_device or char_device (of the
    /// resolved path: a symlink inside the roots is followed).
    pub kind: String,
    /// Size in bytes.
    pub size: u64,
    /// Permission bits as `rwxr-xr-x`.
    pub permissions: String,
    /// Permission bits in octal, e.g. `0644` (with setuid/setgid/sticky when set).
    pub mode: String,
    /// True when no write bit is set.
    pub readonly: bool,
    pub uid: u32,
    pub gid: u32,
    /// Hard links to the file.
    pub links: u64,
    /// Last modification, RFC 3339 UTC.
    pub modified: Option<String>,
    /// Last access, RFC 3339 UTC.
    pub accessed: Option<String>,
    /// Creation (birth) time, RFC 3339 UTC, when the filesystem records it.
    pub created: Option<String>,
    /// When the path as given is a symlink: where it points (inside the roots).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub symlink_target: Option<String>,
}

/// Runs `file_info`.
pub fn file_info(params: &FileInfoParams, roots: &Roots) -> Result<FileInfo, ToolError> {
    let resolved = confine_path(&params.path, roots)?;
    let metadata = std::fs::symlink_metadata(&resolved).map_err(|err| {
        ToolError::failed(format!(
            "cannot stat {}: {err}",
            display_path(roots, &resolved)
        ))
    })?;
    let given = roots.first().join(&params.path);
    // `given` names a link only when its parent resolves inside the roots too.
    let symlink_target = std::fs::symlink_metadata(&given)
        .ok()
        .filter(|meta| meta.file_type().is_symlink())
        .and_then(|_| given.parent().map(Path::to_path_buf))
        .and_then(|parent| parent.canonicalize().ok())
        .filter(|parent| roots.contains(parent))
        .map(|_| display_path(roots, &resolved));
    let mode = metadata.permissions().mode();
    Ok(FileInfo {
        path: display_path(roots, &resolved),
        kind: kind_name(&metadata.file_type()).to_owned(),
        size: metadata.len(),
        permissions: rwx(mode),
        mode: format!("{:04o}", mode & 0o7777),
        readonly: mode & 0o222 == 0,
        uid: metadata.uid(),
        gid: metadata.gid(),
        links: metadata.nlink(),
        modified: metadata.modified().ok().map(rfc3339),
        accessed: metadata.accessed().ok().map(rfc3339),
        created: metadata.created().ok().map(rfc3339),
        symlink_target,
    })
}

fn kind_name(kind: &std::fs::FileType) -> &'static str {
    use std::os::unix::fs::FileTypeExt as _;
    if kind.is_file() {
        "file"
    } else if kind.is_dir() {
        "directory"
    } else if kind.is_symlink() {
        "symlink"
    } else if kind.is_fifo() {
        "fifo"
    } else if kind.is_socket() {
        "socket"
    } else if kind.is_block_device() {
        "block_device"
    } else {
        "char_device"
    }
}

fn rwx(mode: u32) -> String {
    (0..9)
        .map(|bit| {
            let set = mode & (0o400 >> bit) != 0;
            match (set, bit % 3) {
                (false, _) => '-',
                (true, 0) => 'r',
                (true, 1) => 'w',
                (true, _) => 'x',
            }
        })
        .collect()
}

fn rfc3339(time: SystemTime) -> String {
    humantime::format_rfc3339_seconds(time).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    #[test]
    fn describes_files_directories_fifos_and_links() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        fs::write(root.join("a.txt"), "hello").unwrap();
        fs::set_permissions(root.join("a.txt"), fs::Permissions::from_mode(0o640)).unwrap();
        fs::create_dir(root.join("sub")).unwrap();
        std::os::unix::fs::symlink("a.txt", root.join("link")).unwrap();
        crate::open::make_fifo(&root.join("pipe"));
        let roots = Roots::new([root.to_path_buf()]).unwrap();
        let info = |path: &str| file_info(&FileInfoParams { path: path.into() }, &roots);

        let file = info("a.txt").unwrap();
        assert_eq!(
            (
                file.kind.as_str(),
                file.size,
                file.permissions.as_str(),
                file.mode.as_str()
            ),
            ("file", 5, "rw-r-----", "0640")
        );
        assert!(!file.readonly && file.modified.as_deref().is_some_and(|m| m.ends_with('Z')));
        assert_eq!(info("sub").unwrap().kind, "directory");
        assert_eq!(info("pipe").unwrap().kind, "fifo");
        let link = info("link").unwrap();
        assert_eq!(
            (link.path.as_str(), link.symlink_target.as_deref()),
            ("a.txt", Some("a.txt"))
        );

        let outside = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink(outside.path(), root.join("out")).unwrap();
        assert!(info("out").unwrap_err().to_string().starts_with("denied"));
        assert!(info("../").unwrap_err().to_string().starts_with("denied"));
        assert!(
            info("missing")
                .unwrap_err()
                .to_string()
                .starts_with("not found")
        );
    }
}
