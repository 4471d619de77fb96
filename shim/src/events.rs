//! Task events to containerd, in order, from one thread: callers never
//! block on containerd while they hold the shim's lock.

use std::sync::mpsc::{self, Sender};
use std::sync::Mutex;

use containerd_shim::protos::protobuf::MessageDyn;
use containerd_shim::publisher::RemotePublisher;
use containerd_shim::Context;

type Event = (&'static str, Box<dyn MessageDyn + Send>);

/// The queue of events to publish.
#[derive(Debug)]
pub struct Events {
    tx: Mutex<Sender<Event>>,
}

impl Events {
    /// Start the publishing thread for `namespace`.
    pub fn start(publisher: RemotePublisher, namespace: String) -> std::io::Result<Events> {
        let (tx, rx) = mpsc::channel::<Event>();
        std::thread::Builder::new()
            .name("events".into())
            .stack_size(256 * 1024)
            .spawn(move || {
                for (topic, ev) in rx {
                    if let Err(e) = publisher.publish(Context::default(), topic, &namespace, ev) {
                        log::warn!("publish {topic}: {e}");
                    }
                }
            })?;
        Ok(Events { tx: Mutex::new(tx) })
    }

    /// Queue `ev` on `topic`.
    pub fn send(&self, topic: &'static str, ev: impl MessageDyn + 'static) {
        if let Ok(tx) = self.tx.lock() {
            let _ = tx.send((topic, Box::new(ev)));
        }
    }
}
