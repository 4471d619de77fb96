//! The messages of CRIU's RPC interface (`criu swrk`), as its rpc.proto
//! (proto2) defines them: only the fields skiff sets or reads, with their
//! tag numbers. Unknown fields in CRIU's answers are skipped by prost.

/// `criu_req_type`: what a request asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, prost::Enumeration)]
#[repr(i32)]
pub enum ReqType {
    /// Nothing (an unset type).
    Empty = 0,
    /// Dump a process tree.
    Dump = 1,
    /// Restore a process tree.
    Restore = 2,
    /// Pre-dump the memory of a process tree (it keeps running).
    PreDump = 4,
    /// An answer to, or a notification from, CRIU.
    Notify = 6,
    /// Ask which optional features the kernel and CRIU have.
    FeatureCheck = 9,
    /// Ask CRIU's version.
    Version = 10,
}

/// `criu_cg_mode`: how CRIU handles cgroups.
#[derive(Clone, Copy, Debug, PartialEq, Eq, prost::Enumeration)]
#[repr(i32)]
pub enum CgMode {
    /// Leave cgroups alone.
    Ignore = 0,
    /// Restore cgroup properties only where CRIU made the cgroup.
    Soft = 3,
    /// Restore every property.
    Full = 4,
    /// Restore every property and fail if one cannot be.
    Strict = 5,
}

/// `ext_mount_map`: a mount outside the container's tree.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ExtMountMap {
    /// At dump: the mount point; at restore: the same key.
    #[prost(string, required, tag = "1")]
    pub key: String,
    /// At dump: the key again; at restore: the host path to bind there.
    #[prost(string, required, tag = "2")]
    pub val: String,
}

/// `inherit_fd`: an fd of CRIU's that replaces a dumped external file.
#[derive(Clone, PartialEq, prost::Message)]
pub struct InheritFd {
    /// The external file's key (`pipe:[inode]`, `extRootNetNS`).
    #[prost(string, required, tag = "1")]
    pub key: String,
    /// The fd number in CRIU's process.
    #[prost(int32, required, tag = "2")]
    pub fd: i32,
}

/// `cgroup_root`: where the restored tree's cgroups go.
#[derive(Clone, PartialEq, prost::Message)]
pub struct CgroupRoot {
    /// The controller (none: all of them).
    #[prost(string, optional, tag = "1")]
    pub ctrl: Option<String>,
    /// The cgroup path below the hierarchy's root.
    #[prost(string, required, tag = "2")]
    pub path: String,
}

/// `criu_page_server_info`: where a page server listens.
#[derive(Clone, PartialEq, prost::Message)]
pub struct PageServer {
    /// Its address.
    #[prost(string, optional, tag = "1")]
    pub address: Option<String>,
    /// Its TCP port.
    #[prost(int32, optional, tag = "2")]
    pub port: Option<i32>,
}

/// `criu_opts`: the options of a request.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Opts {
    /// The images directory, open in CRIU's process.
    #[prost(int32, required, tag = "1")]
    pub images_dir_fd: i32,
    /// The root of the tree to dump.
    #[prost(int32, optional, tag = "2")]
    pub pid: Option<i32>,
    /// Keep the tree running after the dump.
    #[prost(bool, optional, tag = "3")]
    pub leave_running: Option<bool>,
    /// Dump external unix sockets.
    #[prost(bool, optional, tag = "4")]
    pub ext_unix_sk: Option<bool>,
    /// Dump established TCP connections.
    #[prost(bool, optional, tag = "5")]
    pub tcp_established: Option<bool>,
    /// The tree is a shell job (its session and tty are outside).
    #[prost(bool, optional, tag = "7")]
    pub shell_job: Option<bool>,
    /// Dump file locks.
    #[prost(bool, optional, tag = "8")]
    pub file_locks: Option<bool>,
    /// Log level (0-4).
    #[prost(int32, optional, tag = "9")]
    pub log_level: Option<i32>,
    /// The log's name in the work directory.
    #[prost(string, optional, tag = "10")]
    pub log_file: Option<String>,
    /// The page server to send the pages to (dump), or to serve them from
    /// (a lazy dump).
    #[prost(message, optional, tag = "11")]
    pub ps: Option<PageServer>,
    /// Send notifications (and wait for their answers).
    #[prost(bool, optional, tag = "12")]
    pub notify_scripts: Option<bool>,
    /// The root of the container's mount namespace.
    #[prost(string, optional, tag = "13")]
    pub root: Option<String>,
    /// The parent images (pre-dump), relative to the images directory.
    #[prost(string, optional, tag = "14")]
    pub parent_img: Option<String>,
    /// Track memory changes (for pre-dumps).
    #[prost(bool, optional, tag = "15")]
    pub track_mem: Option<bool>,
    /// Punch the pages of the parent images out that a dump replaces.
    #[prost(bool, optional, tag = "16")]
    pub auto_dedup: Option<bool>,
    /// The work directory (logs), open in CRIU's process.
    #[prost(int32, optional, tag = "17")]
    pub work_dir_fd: Option<i32>,
    /// Mounts outside the container's tree.
    #[prost(message, repeated, tag = "23")]
    pub ext_mnt: Vec<ExtMountMap>,
    /// Dump and restore cgroups.
    #[prost(bool, optional, tag = "24")]
    pub manage_cgroups: Option<bool>,
    /// Where the restored cgroups go.
    #[prost(message, repeated, tag = "25")]
    pub cg_root: Vec<CgroupRoot>,
    /// Restore the tree as a sibling of CRIU: a child of its caller.
    #[prost(bool, optional, tag = "26")]
    pub rst_sibling: Option<bool>,
    /// fds of CRIU's that stand in for external files.
    #[prost(message, repeated, tag = "27")]
    pub inherit_fd: Vec<InheritFd>,
    /// How cgroups are handled.
    #[prost(enumeration = "CgMode", optional, tag = "34")]
    pub manage_cgroups_mode: Option<i32>,
    /// External resources (`net[inode]:key`).
    #[prost(string, repeated, tag = "37")]
    pub external: Vec<String>,
    /// Namespaces (CLONE_NEW* bits) restored empty, not from the images.
    #[prost(uint32, optional, tag = "38")]
    pub empty_ns: Option<u32>,
    /// The cgroup to freeze the tree with.
    #[prost(string, optional, tag = "44")]
    pub freeze_cgroup: Option<String>,
    /// Dump pages lazily (userfaultfd).
    #[prost(bool, optional, tag = "48")]
    pub lazy_pages: Option<bool>,
    /// Keep the pty master of the container's tty outside the images.
    #[prost(bool, optional, tag = "50")]
    pub orphan_pts_master: Option<bool>,
    /// The LSM profile for the restored tree.
    #[prost(string, optional, tag = "53")]
    pub lsm_profile: Option<String>,
    /// The SELinux mount context for the restored tree.
    #[prost(string, optional, tag = "63")]
    pub lsm_mount_context: Option<String>,
}

/// `criu_features`: optional features (asked for and answered).
#[derive(Clone, PartialEq, prost::Message)]
pub struct Features {
    /// Memory change tracking (pre-dump).
    #[prost(bool, optional, tag = "1")]
    pub mem_track: Option<bool>,
    /// Lazy pages (userfaultfd).
    #[prost(bool, optional, tag = "2")]
    pub lazy_pages: Option<bool>,
}

/// `criu_req`: a request (or the answer to a notification).
#[derive(Clone, PartialEq, prost::Message)]
pub struct Req {
    /// What is asked.
    #[prost(enumeration = "ReqType", required, tag = "1")]
    pub r#type: i32,
    /// The options.
    #[prost(message, optional, tag = "2")]
    pub opts: Option<Opts>,
    /// The answer to a notification.
    #[prost(bool, optional, tag = "3")]
    pub notify_success: Option<bool>,
    /// The features asked about (FEATURE_CHECK).
    #[prost(message, optional, tag = "5")]
    pub features: Option<Features>,
}

/// `criu_restore_resp`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct RestoreResp {
    /// The restored tree's root.
    #[prost(int32, required, tag = "1")]
    pub pid: i32,
}

/// `criu_notify`: CRIU reached a step (its "action scripts").
#[derive(Clone, PartialEq, prost::Message)]
pub struct Notify {
    /// The step (`setup-namespaces`, `post-restore`, ...).
    #[prost(string, optional, tag = "1")]
    pub script: Option<String>,
    /// The process it concerns (the restored root's pid).
    #[prost(int32, optional, tag = "2")]
    pub pid: Option<i32>,
}

/// `criu_version`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Version {
    /// Major.
    #[prost(int32, required, tag = "1")]
    pub major_number: i32,
    /// Minor.
    #[prost(int32, required, tag = "2")]
    pub minor_number: i32,
    /// Sublevel.
    #[prost(int32, optional, tag = "4")]
    pub sublevel: Option<i32>,
}

/// `criu_resp`: CRIU's answer, or a notification.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Resp {
    /// What it answers.
    #[prost(enumeration = "ReqType", required, tag = "1")]
    pub r#type: i32,
    /// Whether the request succeeded.
    #[prost(bool, required, tag = "2")]
    pub success: bool,
    /// RESTORE's answer.
    #[prost(message, optional, tag = "4")]
    pub restore: Option<RestoreResp>,
    /// A notification.
    #[prost(message, optional, tag = "5")]
    pub notify: Option<Notify>,
    /// The errno of a failure.
    #[prost(int32, optional, tag = "7")]
    pub cr_errno: Option<i32>,
    /// FEATURE_CHECK's answer.
    #[prost(message, optional, tag = "8")]
    pub features: Option<Features>,
    /// The message of a failure.
    #[prost(string, optional, tag = "9")]
    pub cr_errmsg: Option<String>,
    /// VERSION's answer.
    #[prost(message, optional, tag = "10")]
    pub version: Option<Version>,
}
