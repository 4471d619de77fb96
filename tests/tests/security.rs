//! Regression tests for container-escape classes of bugs.

use skiff_conformance::*;
use std::fs;
use std::io::Write;
use std::os::unix::fs::{symlink, FileTypeExt, MetadataExt, OpenOptionsExt};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

fn dir_listing(p: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(p)
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

fn host_mount_points() -> Vec<String> {
    fs::read_to_string("/proc/self/mountinfo")
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split(' ').nth(4).map(str::to_owned))
        .collect()
}

/// A bind-mount destination that is a symlink to a host path must never
/// mount over the host path: either it lands inside the rootfs or create
/// fails cleanly.
fn symlink_escape(link_target: impl Fn(&Path) -> String, tag: &str) {
    let rt = Runtime::new();
    let hostdir = TempDir::new("skiff-victim");
    fs::write(hostdir.path().join("sentinel"), "host").unwrap();
    let payload = TempDir::new("skiff-payload");
    fs::write(payload.path().join("payload"), "container").unwrap();
    let mut bundle = Bundle::sh("ls /evil; cat /evil/payload");
    symlink(link_target(hostdir.path()), bundle.rootfs().join("evil")).unwrap();
    bundle.add_bind(payload.path(), "/evil", &["bind"]);
    let id = unique_id(tag);
    let out = rt.run(&bundle, &id, &[]);
    // Whatever happened, the host directory is untouched and not a mount point.
    assert_eq!(
        dir_listing(hostdir.path()),
        ["sentinel"],
        "host dir changed"
    );
    let victim = hostdir.path().to_string_lossy().into_owned();
    assert!(
        !host_mount_points().contains(&victim),
        "something is mounted over {victim} on the host"
    );
    if out.status.success() {
        let text = stdout(&out);
        assert!(
            text.contains("payload") && text.contains("container"),
            "{text}"
        );
    } else {
        assert_clean_failure(&out, "", &rt, &id, &bundle);
    }
    assert_no_leftovers(&rt, &id, &bundle);
}

#[test]
fn bind_destination_absolute_symlink_stays_in_rootfs() {
    if !preflight("bind_destination_absolute_symlink_stays_in_rootfs") {
        return;
    }
    symlink_escape(|host| host.to_string_lossy().into_owned(), "symabs");
}

#[test]
fn bind_destination_relative_symlink_stays_in_rootfs() {
    if !preflight("bind_destination_relative_symlink_stays_in_rootfs") {
        return;
    }
    symlink_escape(
        |host| format!("../../../../../../../..{}", host.display()),
        "symrel",
    );
}

/// fds of a process as seen on the host, sorted.
fn fds_of(pid: i64) -> Vec<i32> {
    let mut v: Vec<i32> = fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| {
            d.flatten()
                .filter_map(|e| e.file_name().to_string_lossy().parse().ok())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

#[test]
fn no_fds_leak_into_the_container() {
    if !preflight("no_fds_leak_into_the_container") {
        return;
    }
    let rt = Runtime::new();
    let bundle = Bundle::with_args(&["sleep", "1000"]);
    let id = unique_id("fdleak");
    let b = bundle.path().to_string_lossy().into_owned();
    bundle.save();
    rt.track(&id);
    // fd 5 is inherited by skiff without CLOEXEC and is not preserved.
    let mut cmd = rt.shell_command("", &["create", "--bundle", &b, &id], "5</etc/hostname");
    assert_success(&rt.output(&mut cmd), "create with an inherited fd 5");
    assert_success(&rt.start(&id), "start");
    rt.expect_status(&id, "running");
    let pid = rt.pid(&id);
    assert!(
        poll_until(Duration::from_secs(5), || readlink(format!(
            "/proc/{pid}/exe"
        ))
        .ends_with("/busybox")),
        "init did not exec busybox: {}",
        readlink(format!("/proc/{pid}/exe"))
    );
    assert_eq!(fds_of(pid), [0, 1, 2], "container init has extra fds");
    // And from inside: an exec'd process sees only its stdio too.
    let mut cmd = rt.shell_command("", &["exec", &id, "ls", "/proc/1/fd"], "7</etc/hostname");
    let out = rt.output(&mut cmd);
    assert_success(&out, "exec ls");
    let text = stdout(&out);
    let fds: Vec<&str> = text.split_whitespace().collect();
    assert_eq!(fds, ["0", "1", "2"], "{}", describe(&out));
    let out = rt.exec(&id, &["sh", "-c", "ls /proc/$$/fd; exit 0"]);
    let text = stdout(&out);
    let fds: Vec<&str> = text.split_whitespace().collect();
    assert_eq!(fds, ["0", "1", "2"], "exec'd process has extra fds");
}

#[test]
fn no_fds_leak_with_preserve_fds() {
    if !preflight("no_fds_leak_with_preserve_fds") {
        return;
    }
    let rt = Runtime::new();
    let bundle = Bundle::sh("ls /proc/$$/fd; exit 0");
    let id = unique_id("fdleak2");
    let b = bundle.path().to_string_lossy().into_owned();
    bundle.save();
    rt.track(&id);
    let mut cmd = rt.shell_command(
        "",
        &["run", "--preserve-fds", "1", "--bundle", &b, &id],
        "3</etc/hostname 4</etc/hostname 5</etc/hostname",
    );
    let out = rt.output(&mut cmd);
    assert_success(&out, "run --preserve-fds 1");
    let text = stdout(&out);
    let fds: Vec<&str> = text.split_whitespace().collect();
    assert_eq!(fds, ["0", "1", "2", "3"], "{}", describe(&out));
}

#[test]
fn cwd_stays_inside_the_container() {
    if !preflight("cwd_stays_inside_the_container") {
        return;
    }
    let rt = Runtime::new();
    let hostcwd = TempDir::new("skiff-hostcwd");
    fs::write(hostcwd.path().join("hostcwd-canary"), "").unwrap();
    let mut bundle = Bundle::sh(
        "readlink /proc/self/cwd; ls -a . ..; (cd ../../../../../../..; ls -a | tr '\\n' ' '); \
         echo; ls -a / | tr '\\n' ' '; echo; readlink /proc/1/cwd",
    );
    fs::write(bundle.rootfs().join("container-canary"), "").unwrap();
    bundle.config_mut()["process"]["cwd"] = serde_json::json!("/tmp");
    let id = unique_id("cwd");
    let mut cmd = rt.run_command(&bundle, &id, &[]);
    cmd.current_dir(hostcwd.path());
    let out = rt.output(&mut cmd);
    assert_success(&out, "run from a host cwd");
    let text = stdout(&out);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.first(), Some(&"/tmp"), "{text}");
    assert_eq!(lines.last(), Some(&"/tmp"), "/proc/1/cwd: {text}");
    assert!(!text.contains("hostcwd-canary"), "host cwd visible: {text}");
    assert!(text.contains("container-canary"), "{text}");
    let n = lines.len();
    assert_eq!(lines[n - 3], lines[n - 2], "`..` escapes the root: {text}");
}

#[test]
fn cwd_through_proc_self_fd_cannot_escape() {
    if !preflight("cwd_through_proc_self_fd_cannot_escape") {
        return;
    }
    // CVE-2024-21626: a leaked runtime fd used as cwd.
    let rt = Runtime::new();
    for fd in 3..=9 {
        let mut bundle = Bundle::sh(
            "cd ../../../../../../../..; ls -a | tr '\\n' ' '; echo; ls -a / | tr '\\n' ' '",
        );
        bundle.config_mut()["process"]["cwd"] = serde_json::json!(format!("/proc/self/fd/{fd}"));
        let id = unique_id("cvefd");
        let out = rt.run(&bundle, &id, &[]);
        if out.status.success() {
            let text = stdout(&out);
            let lines: Vec<&str> = text.lines().collect();
            assert!(
                lines.len() == 2 && lines[0].trim() == lines[1].trim(),
                "cwd /proc/self/fd/{fd} escaped the rootfs: {text}"
            );
        } else {
            assert_clean_failure(&out, "", &rt, &id, &bundle);
        }
    }
}

fn file_bytes(path: &Path) -> Vec<u8> {
    fs::read(path).expect("read binary")
}

#[test]
fn runtime_binary_cannot_be_overwritten_from_created_container() {
    if !preflight("runtime_binary_cannot_be_overwritten_from_created_container") {
        return;
    }
    // CVE-2019-5736.  Run a private copy of skiff so that a failure of the
    // protection damages only the copy.
    let copy_dir = TempDir::new("skiff-bincopy");
    let copy = copy_dir.path().join("skiff");
    fs::copy(skiff_bin(), &copy).expect("copy skiff");
    let before = file_bytes(&copy);
    let copy_meta = fs::metadata(&copy).unwrap();

    let rt = Runtime::new();
    let bundle = Bundle::with_args(&["sleep", "1000"]);
    bundle.save();
    let id = unique_id("cve5736");
    rt.track(&id);
    let mut cmd = Command::new(&copy);
    cmd.arg("--root")
        .arg(rt.root())
        .arg("create")
        .arg("--bundle");
    cmd.arg(bundle.path()).arg(&id);
    assert_success(&rt.output(&mut cmd), "create with the copied binary");
    let pid = rt.pid(&id);
    let exe = format!("/proc/{pid}/exe");
    let exe_meta = fs::metadata(&exe).expect("stat init exe");
    let same_file = exe_meta.dev() == copy_meta.dev() && exe_meta.ino() == copy_meta.ino();

    let attempt = fs::OpenOptions::new()
        .write(true)
        .custom_flags(libc::O_NOCTTY)
        .open(&exe)
        .and_then(|mut f| f.write_all(&before[..1]));
    match attempt {
        Ok(()) => panic!(
            "wrote to {exe} ({}) of a created container (same file as the binary: {same_file})",
            readlink(&exe)
        ),
        Err(e) => {
            let errno = e.raw_os_error().unwrap_or(0);
            assert!(
                [libc::EROFS, libc::ETXTBSY, libc::EPERM, libc::EACCES].contains(&errno),
                "unexpected error writing {exe}: {e}"
            );
        }
    }
    assert_success(&rt.delete_force(&id), "delete --force");
    assert_eq!(file_bytes(&copy), before, "the skiff binary was modified");
    assert_no_leftovers(&rt, &id, &bundle);
}

#[test]
fn masked_paths_are_the_real_dev_null() {
    if !preflight("masked_paths_are_the_real_dev_null") {
        return;
    }
    let rt = Runtime::new();
    let mut paths: Vec<&str> = ["/proc/keys", "/proc/timer_list"]
        .into_iter()
        .filter(|p| Path::new(p).exists())
        .collect();
    paths.push("/fake");
    let mut bundle = Bundle::sh(&format!(
        "stat -c '%n %F %t:%T' {}; echo x > /fake 2>/dev/null; cat /fake | wc -c",
        paths.join(" ")
    ));
    // A regular file in the rootfs is masked too, without being changed.
    fs::write(bundle.rootfs().join("fake"), "secret").unwrap();
    bundle.config_mut()["linux"]["maskedPaths"] = serde_json::json!(paths);
    let out = rt.run_ok(&bundle);
    for p in &paths {
        assert!(
            out.lines()
                .any(|l| l == format!("{p} character special file 1:3")),
            "{p} is not /dev/null: {out}"
        );
    }
    assert_eq!(out.lines().last().map(str::trim), Some("0"), "{out}");
    assert_eq!(
        fs::read_to_string(bundle.rootfs().join("fake")).unwrap(),
        "secret"
    );
    // The host's /dev/null is still a char device 1:3.
    let m = fs::metadata("/dev/null").unwrap();
    assert!(m.file_type().is_char_device() && m.rdev() == libc::makedev(1, 3));
}
