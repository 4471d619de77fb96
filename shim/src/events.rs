//! Task events to containerd, in order, from one thread: callers never
//! block on containerd while they hold the shim's lock.
//!
//! containerd-shim's `RemotePublisher` names each event's `Any` by asking
//! protobuf reflection for the message's full name, which builds the
//! descriptors of the events' .proto files and every file they import
//! (descriptor.proto included): ~300 KiB of heap kept for the shim's life,
//! one shim per pod. Every event type we send names itself here instead.

use std::sync::mpsc::{self, Sender};
use std::sync::Mutex;

use anyhow::Context as _;

use containerd_shim::protos::events::task::*;
use containerd_shim::protos::protobuf::well_known_types::any::Any;
use containerd_shim::protos::protobuf::{Message, MessageField};
use containerd_shim::protos::shim::event::Envelope;
use containerd_shim::protos::shim::events::ForwardRequest;
use containerd_shim::protos::topics::*;
use containerd_shim::protos::ttrpc::context::Context;
use containerd_shim::protos::{Client, EventsClient};

/// An event containerd knows: the topic it goes on and the type it decodes.
pub trait TaskEvent: Message {
    /// The topic, such as `/tasks/start`.
    const TOPIC: &'static str;
    /// The full protobuf name, the `Any`'s type URL.
    const TYPE: &'static str;
}

macro_rules! task_events {
    ($($ty:ident => $topic:ident),* $(,)?) => {
        $(impl TaskEvent for $ty {
            const TOPIC: &'static str = $topic;
            const TYPE: &'static str = concat!("containerd.events.", stringify!($ty));
        })*
    };
}

task_events! {
    TaskCreate => TASK_CREATE_EVENT_TOPIC,
    TaskStart => TASK_START_EVENT_TOPIC,
    TaskDelete => TASK_DELETE_EVENT_TOPIC,
    TaskExit => TASK_EXIT_EVENT_TOPIC,
    TaskOOM => TASK_OOM_EVENT_TOPIC,
    TaskExecAdded => TASK_EXEC_ADDED_EVENT_TOPIC,
    TaskExecStarted => TASK_EXEC_STARTED_EVENT_TOPIC,
    TaskPaused => TASK_PAUSED_EVENT_TOPIC,
    TaskResumed => TASK_RESUMED_EVENT_TOPIC,
}

/// One queued event: topic, type and the encoded message.
type Queued = (&'static str, &'static str, Vec<u8>);

/// The queue of events to publish.
#[derive(Debug)]
pub struct Events {
    tx: Mutex<Sender<Queued>>,
}

impl Events {
    /// Connect to containerd's ttrpc socket (`TTRPC_ADDRESS`) and start the
    /// publishing thread for `namespace`.
    pub fn start(address: &str, namespace: String) -> anyhow::Result<Events> {
        let fd = containerd_shim::util::connect(address)
            .with_context(|| format!("connect to {address}"))?;
        let client = EventsClient::new(Client::new(fd).context("ttrpc client")?);
        let (tx, rx) = mpsc::channel::<Queued>();
        std::thread::Builder::new()
            .name("events".into())
            .stack_size(256 * 1024)
            .spawn(move || {
                for (topic, type_url, value) in rx {
                    if let Err(e) = forward(&client, &namespace, topic, type_url, value) {
                        log::warn!("publish {topic}: {e}");
                    }
                }
            })
            .context("spawn the events thread")?;
        Ok(Events { tx: Mutex::new(tx) })
    }

    /// Queue `ev` on its topic.
    pub fn send<E: TaskEvent>(&self, ev: E) {
        let value = match ev.write_to_bytes() {
            Ok(v) => v,
            Err(e) => {
                log::warn!("encode {}: {e}", E::TYPE);
                return;
            }
        };
        if let Ok(tx) = self.tx.lock() {
            let _ = tx.send((E::TOPIC, E::TYPE, value));
        }
    }
}

fn forward(
    client: &EventsClient,
    namespace: &str,
    topic: &str,
    type_url: &str,
    value: Vec<u8>,
) -> containerd_shim::Result<()> {
    let envelope = Envelope {
        timestamp: MessageField::some(containerd_shim::util::timestamp()?),
        namespace: namespace.to_owned(),
        topic: topic.to_owned(),
        event: MessageField::some(Any {
            type_url: type_url.to_owned(),
            value,
            ..Default::default()
        }),
        ..Default::default()
    };
    let req = ForwardRequest {
        envelope: MessageField::some(envelope),
        ..Default::default()
    };
    client.forward(Context::default(), &req)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use containerd_shim::protos::protobuf::MessageFull;

    fn check<E: TaskEvent + MessageFull>() {
        assert_eq!(E::TYPE, E::descriptor().full_name());
    }

    #[test]
    fn type_names_are_the_protobuf_full_names() {
        check::<TaskCreate>();
        check::<TaskStart>();
        check::<TaskDelete>();
        check::<TaskExit>();
        check::<TaskOOM>();
        check::<TaskExecAdded>();
        check::<TaskExecStarted>();
        check::<TaskPaused>();
        check::<TaskResumed>();
    }
}
