//! Checkpoint and restore with CRIU, through its RPC interface (`criu
//! swrk`): `skiff checkpoint` dumps a running container's process tree to
//! an images directory, `skiff restore` makes a container from a bundle
//! and those images. runc's behaviour: bind mounts are external mounts,
//! namespaces joined by path are external namespaces, the container's
//! cgroup is frozen for the dump and given back to the restored tree, and
//! the init's stdio pipes are replaced by the restoring caller's (and so
//! are stdio files outside the container, such as containerd's fifos,
//! which CRIU dumps as external files).

mod dump;
mod externals;
mod restore;
mod rpc;
mod swrk;

use std::os::fd::OwnedFd;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

pub use dump::{checkpoint, CheckpointOpts};
pub use restore::{restore, RestoreOpts};
pub use swrk::MIN_VERSION;

use crate::error::{Error, IoContext, Result};

/// How CRIU handles the container's cgroups (`--manage-cgroups-mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CgroupsMode {
    /// Restore properties only of cgroups CRIU made (runc's default).
    #[default]
    Soft,
    /// Restore every property.
    Full,
    /// Restore every property, failing if one cannot be.
    Strict,
    /// Leave cgroups alone.
    Ignore,
}

impl CgroupsMode {
    /// Parse runc's names: soft, full, strict, ignore.
    pub fn parse(s: &str) -> Result<CgroupsMode> {
        Ok(match s {
            "soft" => CgroupsMode::Soft,
            "full" => CgroupsMode::Full,
            "strict" => CgroupsMode::Strict,
            "ignore" => CgroupsMode::Ignore,
            other => {
                return Err(Error::Invalid {
                    field: "--manage-cgroups-mode".into(),
                    msg: format!("{other:?} is not one of soft, full, strict, ignore"),
                })
            }
        })
    }

    fn rpc(self) -> rpc::CgMode {
        match self {
            CgroupsMode::Soft => rpc::CgMode::Soft,
            CgroupsMode::Full => rpc::CgMode::Full,
            CgroupsMode::Strict => rpc::CgMode::Strict,
            CgroupsMode::Ignore => rpc::CgMode::Ignore,
        }
    }
}

/// What checkpoint and restore share: CRIU, the directories, and the
/// options that mean the same to both.
#[derive(Debug, Clone, Default)]
pub struct CriuOpts {
    /// The CRIU binary (`--criu`; default `criu` from PATH).
    pub criu: Option<PathBuf>,
    /// The images directory (`--image-path`).
    pub image_path: PathBuf,
    /// Where CRIU writes its log (`--work-path`; default: the images
    /// directory on restore, the container's state dir on checkpoint).
    pub work_path: Option<PathBuf>,
    /// `--tcp-established`.
    pub tcp_established: bool,
    /// `--ext-unix-sk`.
    pub ext_unix_sk: bool,
    /// `--shell-job`.
    pub shell_job: bool,
    /// `--file-locks`.
    pub file_locks: bool,
    /// `--manage-cgroups-mode`.
    pub cgroups_mode: CgroupsMode,
    /// `--empty-ns`: namespaces (runc's names) CRIU makes empty rather
    /// than dumping or restoring.
    pub empty_ns: Vec<String>,
    /// `--auto-dedup`.
    pub auto_dedup: bool,
    /// `--lazy-pages`.
    pub lazy_pages: bool,
}

impl CriuOpts {
    fn binary(&self) -> PathBuf {
        self.criu.clone().unwrap_or_else(|| PathBuf::from("criu"))
    }

    /// The CLONE_NEW* bits of `--empty-ns`.
    fn empty_ns_bits(&self) -> Result<u32> {
        let mut bits = 0u32;
        for ns in &self.empty_ns {
            bits |= match ns.as_str() {
                "network" | "net" => libc::CLONE_NEWNET,
                "ipc" => libc::CLONE_NEWIPC,
                "uts" => libc::CLONE_NEWUTS,
                other => {
                    return Err(Error::Invalid {
                        field: "--empty-ns".into(),
                        msg: format!("{other:?}: only network, ipc and uts can be left empty"),
                    })
                }
            } as u32;
        }
        Ok(bits)
    }

    /// `--lazy-pages`: an error unless CRIU and this kernel can (CRIU's
    /// lazy_pages feature: userfaultfd).
    fn check_lazy(&self, criu: &Path) -> Result<()> {
        if !self.lazy_pages {
            return Ok(());
        }
        let want = rpc::Features {
            lazy_pages: Some(true),
            ..Default::default()
        };
        if swrk::features(criu, want)?.lazy_pages != Some(true) {
            return Err(Error::Unsupported {
                field: "--lazy-pages".into(),
                msg: "this kernel or CRIU cannot migrate pages lazily (userfaultfd)".into(),
            });
        }
        Ok(())
    }

    /// The options both requests set the same way.
    fn common(
        &self,
        images: &OwnedFd,
        work: &OwnedFd,
        log: &str,
        root: &Path,
    ) -> Result<rpc::Opts> {
        use std::os::fd::AsRawFd;
        Ok(rpc::Opts {
            images_dir_fd: images.as_raw_fd(),
            work_dir_fd: Some(work.as_raw_fd()),
            log_level: Some(4),
            log_file: Some(log.into()),
            root: Some(root.to_string_lossy().into_owned()),
            manage_cgroups: Some(true),
            manage_cgroups_mode: Some(self.cgroups_mode.rpc() as i32),
            notify_scripts: Some(true),
            shell_job: Some(self.shell_job),
            tcp_established: Some(self.tcp_established),
            ext_unix_sk: Some(self.ext_unix_sk),
            file_locks: Some(self.file_locks),
            auto_dedup: Some(self.auto_dedup),
            orphan_pts_master: Some(true),
            lazy_pages: Some(self.lazy_pages),
            empty_ns: Some(self.empty_ns_bits()?).filter(|b| *b != 0),
            ..Default::default()
        })
    }
}

/// Create `dir` (mode 0700, as runc) if missing and open it.
fn open_dir(dir: &Path, field: &str) -> Result<OwnedFd> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| Error::Invalid {
            field: field.into(),
            msg: format!("{}: {e}", dir.display()),
        })?;
    std::fs::File::open(dir).map(OwnedFd::from).path(dir)
}

/// The error of a failed CRIU request, with the log's last error line.
fn with_log(e: Error, log: &Path) -> Error {
    let Error::Criu { op, msg } = e else { return e };
    let last = std::fs::read_to_string(log).ok().and_then(|t| {
        t.lines()
            .rev()
            .find(|l| l.contains("Error"))
            .map(|l| l.trim().to_string())
    });
    let msg = match last {
        Some(l) => format!("{msg}: {l} (log: {})", log.display()),
        None => format!("{msg} (log: {})", log.display()),
    };
    Error::Criu { op, msg }
}

/// The file in the images directory naming the init's stdio (runc's).
const DESCRIPTORS: &str = "descriptors.json";
