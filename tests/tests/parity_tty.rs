//! runc parity for terminals: `create` with a console socket leaves nothing
//! holding the caller's stdio, and the process owns its terminal.

use serde_json::json;
use skiff_conformance::*;
use std::process::Command;
use std::time::Duration;

#[test]
fn create_with_console_socket_releases_the_callers_stdout() {
    require_root!();
    let rt = Runtime::new();
    let mut b = Bundle::with_args(&["sleep", "1000"]);
    b.set_terminal(true);
    b.save();
    let sock = ConsoleSocket::new();
    let id = unique_id("tty-stdio");
    rt.track(&id);
    // `$(...)` returns only when every holder of the pipe has closed it.
    let mut cmd = Command::new("timeout");
    cmd.args(["10", "/bin/sh", "-c"])
        .arg("out=$(\"$0\" --root \"$1\" create --bundle \"$2\" --console-socket \"$3\" \"$4\" 2>&1); echo \"create-returned rc=$? $out\"")
        .arg(skiff_bin())
        .arg(rt.root())
        .arg(b.path())
        .arg(sock.path())
        .arg(&id);
    let out = output_with_timeout(&mut cmd, Duration::from_secs(15));
    let _master = sock.recv_fd(Duration::from_secs(5));
    assert!(
        stdout(&out).contains("create-returned rc=0"),
        "create kept the caller's stdout open: {}",
        describe(&out)
    );
    assert_success(&rt.delete_force(&id), "delete -f");
}

#[test]
fn terminal_is_owned_by_the_process_user() {
    require_root!();
    let rt = Runtime::new();
    let mut b = Bundle::sh("stat -c 'owner=%u' $(tty); tty");
    b.set_terminal(true);
    b.config_mut()["process"]["user"] = json!({"uid": 1000, "gid": 1000});
    b.save();
    let id = unique_id("tty-owner");
    let out = rt.run(&b, &id, &[]);
    assert_success(&out, "run as uid 1000 with a terminal");
    let text = stdout(&out).replace('\r', "");
    assert!(text.contains("owner=1000"), "{text:?}");
    assert!(text.contains("/dev/pts/"), "{text:?}");
}
