//! Terminal containers: the pty master arrives over `--console-socket`.

use serde_json::json;
use skiff_conformance::*;
use std::time::Duration;

const RECV_TIMEOUT: Duration = Duration::from_secs(10);
const READ_TIMEOUT: Duration = Duration::from_secs(15);

#[test]
fn create_sends_pty_master_and_output_arrives() {
    if !preflight("create_sends_pty_master_and_output_arrives") {
        return;
    }
    let rt = Runtime::new();
    let mut bundle = Bundle::sh(
        "echo hello-tty; tty; [ -t 0 ] && [ -t 1 ] && [ -t 2 ] && echo all-ttys; \
         stat -c '%t' /dev/console; stat -L -c 'stdin %t' /proc/self/fd/0",
    );
    bundle.set_terminal(true);
    let sock = ConsoleSocket::new();
    let id = unique_id("tty");
    let out = rt.create(&bundle, &id, &["--console-socket", &sock.path_str()]);
    assert_success(&out, "create --console-socket");
    let (master, _name) = sock.recv_fd(RECV_TIMEOUT).expect("receive the pty master");
    assert_success(&rt.start(&id), "start");
    let (text, ended) = read_pty_until_eof(&master, READ_TIMEOUT);
    assert!(ended, "pty output did not end: {text:?}");
    let lines: Vec<&str> = text.lines().map(str::trim).collect();
    assert!(lines.contains(&"hello-tty"), "{text:?}");
    // As runc: the terminal is the pty peer itself, /dev/pts/N.
    assert!(
        lines.iter().any(|l| l.starts_with("/dev/pts/")),
        "tty is not /dev/pts/N: {text:?}"
    );
    assert!(lines.contains(&"stdin 88"), "stdin is not a pts: {text:?}");
    assert!(
        lines.contains(&"all-ttys"),
        "stdio is not the pty: {text:?}"
    );
    // /dev/console is bind-mounted from the pts (major 136 = 0x88).
    assert!(
        lines.contains(&"88"),
        "/dev/console is not the pty: {text:?}"
    );
    rt.expect_status(&id, "stopped");
}

#[test]
fn console_size_is_applied() {
    if !preflight("console_size_is_applied") {
        return;
    }
    let rt = Runtime::new();
    let mut bundle = Bundle::with_args(&["stty", "size"]);
    bundle.set_terminal(true);
    bundle.config_mut()["process"]["consoleSize"] = json!({"height": 37, "width": 101});
    let sock = ConsoleSocket::new();
    let id = unique_id("ttysize");
    assert_success(
        &rt.create(&bundle, &id, &["--console-socket", &sock.path_str()]),
        "create",
    );
    let (master, _) = sock.recv_fd(RECV_TIMEOUT).expect("receive the pty master");
    assert_success(&rt.start(&id), "start");
    let (text, _) = read_pty_until_eof(&master, READ_TIMEOUT);
    assert_eq!(text.trim(), "37 101");
}

#[test]
fn detached_run_with_terminal_and_input() {
    if !preflight("detached_run_with_terminal_and_input") {
        return;
    }
    let rt = Runtime::new();
    let mut bundle = Bundle::sh("read line; echo \"got=[$line]\"");
    bundle.set_terminal(true);
    let sock = ConsoleSocket::new();
    let id = unique_id("ttyrun");
    let out = rt.run(
        &bundle,
        &id,
        &["--detach", "--console-socket", &sock.path_str()],
    );
    assert_success(&out, "run -d --console-socket");
    let (master, _) = sock.recv_fd(RECV_TIMEOUT).expect("receive the pty master");
    write_fd_all(&master, b"typed-in\n").expect("write to the pty");
    let (text, ended) = read_pty_until_eof(&master, READ_TIMEOUT);
    assert!(ended, "{text:?}");
    assert!(text.contains("got=[typed-in]"), "{text:?}");
}

#[test]
fn exec_tty_through_console_socket() {
    if !preflight("exec_tty_through_console_socket") {
        return;
    }
    let rt = Runtime::new();
    let bundle = Bundle::with_args(&["sleep", "1000"]);
    let id = unique_id("exectty");
    rt.start_container(&bundle, &id);
    let sock = ConsoleSocket::new();
    let out = rt.exec_with(
        &["--tty", "--detach", "--console-socket", &sock.path_str()],
        &id,
        &["sh", "-c", "tty; echo exec-on-tty"],
    );
    assert_success(&out, "exec -t -d --console-socket");
    let (master, _) = sock.recv_fd(RECV_TIMEOUT).expect("receive the pty master");
    let (text, _) = read_pty_until_eof(&master, READ_TIMEOUT);
    assert!(text.contains("exec-on-tty"), "{text:?}");
    assert!(text.contains("/dev/pts/"), "{text:?}");
}

#[test]
fn terminal_without_console_socket_fails_cleanly() {
    if !preflight("terminal_without_console_socket_fails_cleanly") {
        return;
    }
    let rt = Runtime::new();
    let mut bundle = Bundle::with_args(&["true"]);
    bundle.set_terminal(true);
    let id = unique_id("ttynosock");
    let out = rt.create(&bundle, &id, &[]);
    assert_clean_failure(&out, "console", &rt, &id, &bundle);
}

#[test]
fn console_socket_that_does_not_exist_fails_cleanly() {
    if !preflight("console_socket_that_does_not_exist_fails_cleanly") {
        return;
    }
    let rt = Runtime::new();
    let mut bundle = Bundle::with_args(&["true"]);
    bundle.set_terminal(true);
    let id = unique_id("ttybadsock");
    let missing = format!("{}/no.sock", bundle.path().display());
    let out = rt.create(&bundle, &id, &["--console-socket", &missing]);
    assert_clean_failure(&out, "no.sock", &rt, &id, &bundle);
}

#[test]
fn foreground_run_with_terminal_copies_the_pty() {
    if !preflight("foreground_run_with_terminal_copies_the_pty") {
        return;
    }
    let rt = Runtime::new();
    let mut bundle = Bundle::sh("tty; stty size; echo fg-tty-ok");
    bundle.set_terminal(true);
    bundle.config_mut()["process"]["consoleSize"] = json!({"height": 31, "width": 97});
    bundle.save();
    let id = unique_id("ttyfg");
    // stdin is not a terminal here, so skiff keeps the configured size.
    let out = rt.run(&bundle, &id, &[]);
    assert_success(&out, "run with terminal and no console socket");
    let text = stdout(&out).replace('\r', "");
    assert!(text.contains("fg-tty-ok"), "{text:?}");
    assert!(text.contains("31 97"), "console size: {text:?}");
    assert!(
        text.lines().next().is_some_and(|l| l.starts_with("/dev/")),
        "tty: {text:?}"
    );
    assert_no_leftovers(&rt, &id, &bundle);
}
