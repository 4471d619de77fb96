//! runc-compatible logging: text lines `time="..." level=error msg="..."` or
//! JSON lines `{"level":"error","msg":"...","time":"..."}` (containerd reads
//! `msg`), to `--log FILE` or stderr.

use std::fmt::Write as _;
use std::fs::File;
use std::io::Write;
use std::sync::Mutex;

use anyhow::{Context, Result};
use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

/// The `--log-format` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// logrus text format.
    Text,
    /// One JSON object per line.
    Json,
}

struct Runc(Format);

#[derive(Default)]
struct Msg(String);

impl Visit for Msg {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            let _ = write!(self.0, "{value:?}");
        } else {
            let _ = write!(self.0, " {}={value:?}", field.name());
        }
    }
}

/// Quote `s` as a logrus text value.
fn quote(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_default()
}

impl<S, N> FormatEvent<S, N> for Runc
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        _ctx: &FmtContext<'_, S, N>,
        mut w: Writer<'_>,
        event: &Event<'_>,
    ) -> std::fmt::Result {
        let mut msg = Msg::default();
        event.record(&mut msg);
        let level = match *event.metadata().level() {
            Level::ERROR => "error",
            Level::WARN => "warning",
            Level::INFO => "info",
            Level::DEBUG => "debug",
            Level::TRACE => "trace",
        };
        let time = libcontainer::timefmt::now_rfc3339();
        match self.0 {
            Format::Json => {
                let line = serde_json::json!({"level": level, "msg": msg.0, "time": time});
                writeln!(w, "{line}")
            }
            Format::Text => writeln!(
                w,
                "time={} level={level} msg={}",
                quote(&time),
                quote(&msg.0)
            ),
        }
    }
}

/// Where log lines go.
pub struct Logging {
    to_file: bool,
}

/// Install the global subscriber.
pub fn init(log: Option<&std::path::Path>, format: Format, debug: bool) -> Result<Logging> {
    let level = if debug { Level::DEBUG } else { Level::WARN };
    let builder = tracing_subscriber::fmt()
        .with_max_level(level)
        .event_format(Runc(format));
    match log {
        Some(path) => {
            let f = File::options()
                .create(true)
                .append(true)
                .open(path)
                .with_context(|| format!("--log {}", path.display()))?;
            let f = Mutex::new(f);
            builder.with_writer(f).init();
            Ok(Logging { to_file: true })
        }
        None => {
            builder.with_writer(std::io::stderr).init();
            Ok(Logging { to_file: false })
        }
    }
}

impl Logging {
    /// Report the error that ends the command: one log line and, when the
    /// log goes to a file, the plain message on stderr too (as runc does).
    pub fn fatal(&self, err: &anyhow::Error) {
        let msg = libcontainer::error::one_line(err.as_ref());
        tracing::error!("{msg}");
        if self.to_file {
            let _ = writeln!(std::io::stderr(), "{msg}");
        }
    }
}
