//! Moving host network devices into the container's network namespace
//! (`linux.netDevices`) with one rtnetlink request per device.

use std::collections::HashMap;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};

use nix::errno::Errno;
use nix::sys::socket::{
    bind, recv, sendto, socket, AddressFamily, MsgFlags, NetlinkAddr, SockFlag, SockProtocol,
    SockType,
};
use oci_spec::runtime::LinuxNetDevice;

use crate::error::{Error, Result, SysContext};

const RTM_SETLINK: u16 = 19;
const NLM_F_REQUEST: u16 = 0x1;
const NLM_F_ACK: u16 = 0x4;
const NLMSG_ERROR: u16 = 2;
const IFLA_IFNAME: u16 = 3;
const IFLA_NET_NS_FD: u16 = 28;

fn push_attr(buf: &mut Vec<u8>, typ: u16, data: &[u8]) {
    let len = 4 + data.len();
    buf.extend_from_slice(&(len as u16).to_ne_bytes());
    buf.extend_from_slice(&typ.to_ne_bytes());
    buf.extend_from_slice(data);
    buf.resize(buf.len().next_multiple_of(4), 0);
}

/// The RTM_SETLINK request that moves interface `index` into the network
/// namespace `netns_fd`, named `name` there.
fn move_request(index: u32, netns_fd: i32, name: &str, seq: u32) -> Vec<u8> {
    let mut b = vec![0u8; 16];
    // struct ifinfomsg: family, pad, type, index, flags, change
    b.extend_from_slice(&[0, 0, 0, 0]);
    b.extend_from_slice(&(index as i32).to_ne_bytes());
    b.extend_from_slice(&[0; 8]);
    push_attr(&mut b, IFLA_NET_NS_FD, &(netns_fd as u32).to_ne_bytes());
    let mut n = name.as_bytes().to_vec();
    n.push(0);
    push_attr(&mut b, IFLA_IFNAME, &n);
    let len = b.len() as u32;
    b[0..4].copy_from_slice(&len.to_ne_bytes());
    b[4..6].copy_from_slice(&RTM_SETLINK.to_ne_bytes());
    b[6..8].copy_from_slice(&(NLM_F_REQUEST | NLM_F_ACK).to_ne_bytes());
    b[8..12].copy_from_slice(&seq.to_ne_bytes());
    b
}

/// The errno of a netlink ack (0 on success), if `reply` is one.
fn ack_errno(reply: &[u8]) -> Option<i32> {
    let typ = u16::from_ne_bytes(reply.get(4..6)?.try_into().ok()?);
    if typ != NLMSG_ERROR {
        return None;
    }
    Some(-i32::from_ne_bytes(reply.get(16..20)?.try_into().ok()?))
}

/// Move every device of `devices` into the network namespace `netns`,
/// renamed to its `name` when one is given.
pub fn move_devices(devices: &HashMap<String, LinuxNetDevice>, netns: &OwnedFd) -> Result<()> {
    let sock = socket(
        AddressFamily::Netlink,
        SockType::Raw,
        SockFlag::SOCK_CLOEXEC,
        SockProtocol::NetlinkRoute,
    )
    .step(|| "linux.netDevices: netlink socket".into())?;
    bind(sock.as_raw_fd(), &NetlinkAddr::new(0, 0))
        .step(|| "linux.netDevices: bind netlink socket".into())?;
    let mut names: Vec<&String> = devices.keys().collect();
    names.sort();
    for (seq, host) in names.into_iter().enumerate() {
        let field = format!("linux.netDevices[{host:?}]");
        let target = devices[host].name().as_deref().unwrap_or(host);
        let index = nix::net::if_::if_nametoindex(host.as_str()).map_err(|e| Error::Invalid {
            field: field.clone(),
            msg: format!("no such network device on the host: {e}"),
        })?;
        let req = move_request(index, netns.as_fd().as_raw_fd(), target, seq as u32 + 1);
        sendto(
            sock.as_raw_fd(),
            &req,
            &NetlinkAddr::new(0, 0),
            MsgFlags::empty(),
        )
        .step(|| format!("{field}: netlink send"))?;
        let mut reply = [0u8; 1024];
        let n = recv(sock.as_raw_fd(), &mut reply, MsgFlags::empty())
            .step(|| format!("{field}: netlink receive"))?;
        match ack_errno(&reply[..n]) {
            Some(0) => {}
            Some(e) => {
                return Err(Error::Sys {
                    step: format!("{field}: move into the container as {target:?}"),
                    source: Errno::from_raw(e),
                })
            }
            None => {
                return Err(Error::Invalid {
                    field,
                    msg: "unexpected netlink reply".into(),
                })
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_layout() {
        let r = move_request(7, 5, "eth1", 3);
        assert_eq!(r.len() % 4, 0);
        assert_eq!(
            u32::from_ne_bytes(r[0..4].try_into().unwrap()) as usize,
            r.len()
        );
        assert_eq!(u16::from_ne_bytes(r[4..6].try_into().unwrap()), RTM_SETLINK);
        assert_eq!(i32::from_ne_bytes(r[20..24].try_into().unwrap()), 7);
        // IFLA_NET_NS_FD attr right after the 16+16 byte headers.
        assert_eq!(
            u16::from_ne_bytes(r[34..36].try_into().unwrap()),
            IFLA_NET_NS_FD
        );
        assert_eq!(u32::from_ne_bytes(r[36..40].try_into().unwrap()), 5);
        assert_eq!(
            u16::from_ne_bytes(r[42..44].try_into().unwrap()),
            IFLA_IFNAME
        );
        assert_eq!(&r[44..49], b"eth1\0");
    }

    #[test]
    fn acks() {
        let mut ok = vec![0u8; 36];
        ok[4..6].copy_from_slice(&NLMSG_ERROR.to_ne_bytes());
        assert_eq!(ack_errno(&ok), Some(0));
        ok[16..20].copy_from_slice(&(-17i32).to_ne_bytes());
        assert_eq!(ack_errno(&ok), Some(17));
        assert_eq!(ack_errno(&[0; 8]), None);
    }
}
