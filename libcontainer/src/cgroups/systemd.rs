//! The systemd cgroup driver (`--systemd-cgroup`): the container's init is
//! put in a transient scope unit that systemd creates, as runc does, and the
//! fs driver then writes what systemd has no property for.
//!
//! `linux.cgroupsPath` has the form `slice:prefix:name`, which becomes the
//! unit `prefix-name.scope` in `slice` (`system.slice` when empty). The
//! D-Bus calls go to the system bus; each one, and each wait for a job, is
//! bounded by [`TIMEOUT`].
//!
//! Note: the D-Bus connection (zbus) runs helper threads in the calling
//! process, which stay after [`Scope::start`] returns. Call it after the
//! last raw fork/clone that must happen in a single-threaded process.

use std::future::Future;
use std::path::{Component, Path, PathBuf};
use std::time::Duration;

use futures_lite::StreamExt;
use nix::unistd::Pid;
use oci_spec::runtime::LinuxResources;
use zbus::zvariant::{OwnedObjectPath, OwnedValue, Value};
use zbus::{Connection, MessageStream};

use super::Cgroup;
use crate::error::{Error, Result};

mod devices;
mod props;

use props::{resource_props, Prop, Props};

/// On cgroup v1, the device rules of `r` as properties too (see
/// [`devices`]); none on v2, where skiff's eBPF filter stays beside
/// systemd's.
fn v1_device_props(r: Option<&LinuxResources>) -> Props {
    if !super::v1::is_v1_host() {
        return Vec::new();
    }
    let proc_devices = std::fs::read_to_string("/proc/devices").unwrap_or_default();
    devices::device_props(&super::device_rules(r), &proc_devices)
}

/// The bound on every D-Bus call and on every wait for a systemd job.
pub const TIMEOUT: Duration = Duration::from_secs(30);
/// The slice used when `linux.cgroupsPath` names none.
pub const DEFAULT_SLICE: &str = "system.slice";
/// The unit prefix used when `linux.cgroupsPath` is not set.
pub const DEFAULT_PREFIX: &str = "skiff";

const DEST: &str = "org.freedesktop.systemd1";
const PATH: &str = "/org/freedesktop/systemd1";
const MANAGER: &str = "org.freedesktop.systemd1.Manager";
const FIELD: &str = "linux.cgroupsPath";

/// A systemd unit name and its slice, parsed from cgroupsPath.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scope {
    /// The transient unit, e.g. `skiff-abc.scope`.
    pub unit: String,
    /// The slice it goes in, e.g. `system.slice`.
    pub slice: String,
}

fn invalid(msg: impl Into<String>) -> Error {
    Error::Invalid {
        field: FIELD.into(),
        msg: msg.into(),
    }
}

/// systemd's rule for unit names: `[A-Za-z0-9:_.\-]`, at most 255 bytes.
fn check_unit_name(unit: &str) -> Result<()> {
    let ok = |c: char| c.is_ascii_alphanumeric() || ":_.-\\".contains(c);
    if unit.len() > 255 || !unit.chars().all(ok) {
        return Err(invalid(format!(
            "{unit:?} is not a valid systemd unit name (only [A-Za-z0-9:_.-] are allowed)"
        )));
    }
    Ok(())
}

/// The cgroup path of a slice, relative to the mount: systemd nests slices
/// by their dashes, so `a-b.slice` is `a.slice/a-b.slice`; `-.slice` is the
/// root.
pub fn expand_slice(slice: &str) -> Result<PathBuf> {
    let bad = || invalid(format!("{slice:?} is not a valid systemd slice name"));
    let base = slice.strip_suffix(".slice").ok_or_else(bad)?;
    if base.is_empty() || slice.contains('/') {
        return Err(bad());
    }
    check_unit_name(slice)?;
    let mut path = PathBuf::new();
    if base == "-" {
        return Ok(path);
    }
    let mut prefix = String::new();
    for part in base.split('-') {
        if part.is_empty() {
            return Err(bad());
        }
        path.push(format!("{prefix}{part}.slice"));
        prefix.push_str(part);
        prefix.push('-');
    }
    Ok(path)
}

impl Scope {
    /// Parse `linux.cgroupsPath` as `slice:prefix:name`; none at all means
    /// `system.slice:skiff:<id>` (runc's default, with skiff's prefix).
    pub fn parse(cgroups_path: Option<&str>, id: &str) -> Result<Scope> {
        let (slice, prefix, name) = match cgroups_path.filter(|p| !p.is_empty()) {
            None => (DEFAULT_SLICE, DEFAULT_PREFIX, id),
            Some(p) => match p.split(':').collect::<Vec<_>>()[..] {
                [s, p, n] => (s, p, n),
                _ => {
                    return Err(invalid(format!(
                        "{p:?}: the systemd cgroup driver expects \"slice:prefix:name\""
                    )))
                }
            },
        };
        let slice = if slice.is_empty() {
            DEFAULT_SLICE
        } else {
            slice
        };
        expand_slice(slice)?;
        if name.is_empty() {
            return Err(invalid("the name part of \"slice:prefix:name\" is empty"));
        }
        if name.ends_with(".slice") {
            return Err(Error::Unsupported {
                field: FIELD.into(),
                msg: format!("{name:?}: skiff puts containers in scopes, not slices"),
            });
        }
        let unit = format!("{prefix}-{name}.scope");
        check_unit_name(&unit)?;
        Ok(Scope {
            unit,
            slice: slice.to_string(),
        })
    }

    /// The cgroup systemd gives the scope, computed from the names (the
    /// same as [`Scope::start`] returns, for a system manager).
    pub fn cgroup(&self) -> Result<Cgroup> {
        Ok(Cgroup::at(&expand_slice(&self.slice)?.join(&self.unit)))
    }

    /// Start the transient scope holding `pid`, with the resource properties
    /// systemd understands; returns the cgroup (for the fs driver to write
    /// the rest). systemd moves `pid` into it. A leftover failed unit of the
    /// same name is reset and the start retried once; an active one is an
    /// error (`...UnitExists`).
    pub fn start(&self, pid: Pid, resources: Option<&LinuxResources>) -> Result<Cgroup> {
        let mut props = self.base_props(pid)?;
        if let Some(r) = resources {
            props.extend(resource_props(r)?);
        }
        props.extend(v1_device_props(resources));
        async_io::block_on(self.start_async(&props))
    }

    /// Change the running scope's resource properties (`update`), so that
    /// systemd keeps the new limits across a daemon-reload, as runc does.
    pub fn set_resources(&self, resources: &LinuxResources) -> Result<()> {
        let mut props = resource_props(resources)?;
        if resources.devices().as_ref().is_some_and(|d| !d.is_empty()) {
            props.extend(v1_device_props(Some(resources)));
        }
        if props.is_empty() {
            return Ok(());
        }
        async_io::block_on(async {
            let conn = connect().await?;
            let values: Vec<(&str, Value<'_>)> =
                props.iter().map(|(k, v)| (*k, v.value())).collect();
            call::<_, ()>(
                &conn,
                "SetUnitProperties",
                &(self.unit.as_str(), true, &values),
            )
            .await
            .map_err(|e| self.err("SetUnitProperties", e))
        })
    }

    /// Stop the scope (and reset its failed state); Ok if it does not exist.
    /// Whatever still runs in it is killed with SIGKILL first, so systemd
    /// need not wait for SIGTERM to work.
    pub fn stop(&self) -> Result<()> {
        async_io::block_on(self.stop_async())
    }

    fn base_props(&self, pid: Pid) -> Result<Props> {
        let pid = u32::try_from(pid.as_raw())
            .map_err(|_| Error::Child(format!("systemd: {}: bad pid {pid}", self.unit)))?;
        Ok(vec![
            (
                "Description",
                Prop::Str(format!("skiff container {}", self.unit)),
            ),
            ("Slice", Prop::Str(self.slice.clone())),
            ("Delegate", Prop::Bool(true)),
            ("PIDs", Prop::U32s(vec![pid])),
            ("DefaultDependencies", Prop::Bool(false)),
            ("MemoryAccounting", Prop::Bool(true)),
            ("CPUAccounting", Prop::Bool(true)),
            ("IOAccounting", Prop::Bool(true)),
            ("TasksAccounting", Prop::Bool(true)),
        ])
    }

    fn err(&self, call: &str, e: impl std::fmt::Display) -> Error {
        Error::Child(format!("systemd: {call} {}: {e}", self.unit))
    }

    async fn start_async(&self, props: &Props) -> Result<Cgroup> {
        let conn = connect().await?;
        let mut jobs = job_stream(&conn).await?;
        let values: Vec<(&str, Value<'_>)> = props.iter().map(|(k, v)| (*k, v.value())).collect();
        let aux: Vec<(&str, Vec<(&str, Value<'_>)>)> = Vec::new();
        let body = (self.unit.as_str(), "replace", &values, &aux);
        let job = match call::<_, OwnedObjectPath>(&conn, "StartTransientUnit", &body).await {
            Err(e) if dbus_error(&e) == Some("org.freedesktop.systemd1.UnitExists") => {
                // Maybe a failed unit left by an earlier container: reset, retry once.
                let _ = call::<_, ()>(&conn, "ResetFailedUnit", &(self.unit.as_str(),)).await;
                call::<_, OwnedObjectPath>(&conn, "StartTransientUnit", &body).await
            }
            r => r,
        }
        .map_err(|e| self.err("StartTransientUnit", e))?;
        let result = wait_job(&mut jobs, &job)
            .await
            .map_err(|e| self.err("StartTransientUnit", e))?;
        if result != "done" {
            let _ = call::<_, ()>(&conn, "ResetFailedUnit", &(self.unit.as_str(),)).await;
            return Err(self.err("StartTransientUnit", format!("job {result}")));
        }
        let cg = match self.control_group(&conn).await {
            Ok(cg) => cg,
            Err(e) => {
                tracing::debug!("{e}; computing the cgroup path from the names");
                self.cgroup()?
            }
        };
        if !cg.exists() {
            return Err(self.err(
                "StartTransientUnit",
                format!("the cgroup {} does not exist", cg.display()),
            ));
        }
        Ok(cg)
    }

    /// The scope's ControlGroup property, joined to the mount.
    async fn control_group(&self, conn: &Connection) -> Result<Cgroup> {
        let unit: OwnedObjectPath = call(conn, "GetUnit", &(self.unit.as_str(),))
            .await
            .map_err(|e| self.err("GetUnit", e))?;
        let reply = timeout(conn.call_method(
            Some(DEST),
            unit.as_str(),
            Some("org.freedesktop.DBus.Properties"),
            "Get",
            &("org.freedesktop.systemd1.Scope", "ControlGroup"),
        ))
        .await
        .map_err(|e| self.err("Get ControlGroup", e))?;
        let value: OwnedValue = reply
            .body()
            .deserialize()
            .map_err(|e| self.err("Get ControlGroup", e))?;
        let path = String::try_from(value).map_err(|e| self.err("Get ControlGroup", e))?;
        cgroup_under_mount(&path)
            .ok_or_else(|| self.err("Get ControlGroup", format!("unusable cgroup path {path:?}")))
    }

    async fn stop_async(&self) -> Result<()> {
        let conn = connect().await?;
        let mut jobs = job_stream(&conn).await?;
        let no_unit = |e: &zbus::Error| {
            dbus_error(e) == Some("org.freedesktop.systemd1.NoSuchUnit")
                || dbus_error(e) == Some("org.freedesktop.DBus.Error.UnknownObject")
        };
        let kill = (self.unit.as_str(), "all", libc::SIGKILL);
        match call::<_, ()>(&conn, "KillUnit", &kill).await {
            Ok(()) => {}
            Err(e) if no_unit(&e) => {}
            Err(e) => tracing::debug!("systemd: KillUnit {}: {e}", self.unit),
        }
        match call::<_, OwnedObjectPath>(&conn, "StopUnit", &(self.unit.as_str(), "replace")).await
        {
            Ok(job) => {
                let result = wait_job(&mut jobs, &job)
                    .await
                    .map_err(|e| self.err("StopUnit", e))?;
                if result != "done" {
                    tracing::warn!("systemd: StopUnit {}: job {result}", self.unit);
                }
            }
            Err(e) if no_unit(&e) => {}
            Err(e) => return Err(self.err("StopUnit", e)),
        }
        // A unit that failed stays loaded until its failed state is reset.
        let _ = call::<_, ()>(&conn, "ResetFailedUnit", &(self.unit.as_str(),)).await;
        Ok(())
    }
}

/// The cgroup of a ControlGroup value, if it is absolute and clean.
fn cgroup_under_mount(path: &str) -> Option<Cgroup> {
    let p = Path::new(path);
    let clean = p.is_absolute()
        && p.components()
            .skip(1)
            .all(|c| matches!(c, Component::Normal(_)))
        && p.components().count() > 1;
    clean.then(|| Cgroup::at(Path::new(path.trim_start_matches('/'))))
}

/// The D-Bus error name of a failed method call.
fn dbus_error(e: &zbus::Error) -> Option<&str> {
    match e {
        zbus::Error::MethodError(name, _, _) => Some(name.as_str()),
        _ => None,
    }
}

/// `fut`, or a timed-out error after [`TIMEOUT`].
async fn timeout<T>(fut: impl Future<Output = zbus::Result<T>>) -> zbus::Result<T> {
    futures_lite::FutureExt::or(fut, async {
        async_io::Timer::after(TIMEOUT).await;
        Err(zbus::Error::InputOutput(std::sync::Arc::new(
            std::io::Error::new(std::io::ErrorKind::TimedOut, "timed out after 30s"),
        )))
    })
    .await
}

async fn connect() -> Result<Connection> {
    let conn = async {
        zbus::connection::Builder::system()?
            .method_timeout(TIMEOUT)
            .build()
            .await
    };
    timeout(conn)
        .await
        .map_err(|e| Error::Child(format!("systemd: connect to the system bus: {e}")))
}

/// The manager's JobRemoved signals, subscribed before any job is made.
async fn job_stream(conn: &Connection) -> Result<MessageStream> {
    let fail = |e: zbus::Error| Error::Child(format!("systemd: subscribe to JobRemoved: {e}"));
    let rule = zbus::MatchRule::builder()
        .msg_type(zbus::message::Type::Signal)
        .sender(DEST)
        .and_then(|b| b.path(PATH))
        .and_then(|b| b.interface(MANAGER))
        .and_then(|b| b.member("JobRemoved"))
        .map_err(fail)?
        .build();
    timeout(MessageStream::for_match_rule(rule, conn, Some(256)))
        .await
        .map_err(fail)
}

/// Call a Manager method and decode its reply.
async fn call<B, R>(conn: &Connection, method: &str, body: &B) -> zbus::Result<R>
where
    B: serde::Serialize + zbus::zvariant::DynamicType,
    R: for<'d> serde::Deserialize<'d> + zbus::zvariant::Type,
{
    let reply = timeout(conn.call_method(Some(DEST), PATH, Some(MANAGER), method, body)).await?;
    reply.body().deserialize()
}

/// Wait for the JobRemoved signal of `job`; returns its result (`done`,
/// `failed`, `canceled`, `timeout`, `dependency` or `skipped`).
async fn wait_job(jobs: &mut MessageStream, job: &OwnedObjectPath) -> zbus::Result<String> {
    timeout(async {
        while let Some(msg) = jobs.next().await {
            let msg = msg?;
            let body = msg.body();
            let Ok((_id, path, _unit, result)) =
                body.deserialize::<(u32, OwnedObjectPath, String, String)>()
            else {
                continue;
            };
            if &path == job {
                return Ok(result);
            }
        }
        Err(zbus::Error::Failure("the bus connection closed".into()))
    })
    .await
}

#[cfg(test)]
#[path = "systemd_tests.rs"]
mod tests;
