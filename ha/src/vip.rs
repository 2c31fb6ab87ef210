//! Virtual addresses through netlink (rtnetlink): added with the configured label and a short
//! valid lifetime that the master renews with every advert (`NLM_F_REPLACE` on the same
//! address), so an address left behind by a node killed with -9 expires by itself instead of
//! answering beside the new master's. Removed on leaving the master role, on clean exit, and at
//! start (a stale copy from an earlier run). rtnetlink is async: a current-thread tokio runtime
//! owned by this struct runs each request to completion on the VRRP thread.

use crate::error::{Error, Result};
use rtnetlink::packet_route::address::{AddressAttribute, AddressMessage, CacheInfo};
use std::net::IpAddr;

/// One virtual address to manage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Vip {
    pub addr: IpAddr,
    pub prefix: u8,
    /// Interface index it goes on.
    pub ifindex: u32,
    pub label: Option<String>,
}

/// A netlink connection for adding and removing addresses.
pub struct VipManager {
    rt: tokio::runtime::Runtime,
    handle: rtnetlink::Handle,
}

fn nl(op: &'static str) -> impl Fn(rtnetlink::Error) -> Error {
    move |e| Error::Io { op, msg: e.to_string() }
}

/// True when netlink said the address was not there (EADDRNOTAVAIL), which removal tolerates.
fn is_absent(e: &rtnetlink::Error) -> bool {
    matches!(e, rtnetlink::Error::NetlinkError(m) if m.raw_code() == -nix::libc::EADDRNOTAVAIL)
}

impl VipManager {
    /// Opens the netlink connection (needs CAP_NET_ADMIN for changes).
    pub fn new() -> Result<Self> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .build()
            .map_err(|e| Error::io("tokio runtime for netlink", e))?;
        let handle = rt.block_on(async {
            let (conn, handle, _) = rtnetlink::new_connection().map_err(|e| Error::io("netlink socket", e))?;
            tokio::spawn(conn);
            Ok::<_, Error>(handle)
        })?;
        Ok(VipManager { rt, handle })
    }

    fn message(vip: &Vip) -> AddressMessage {
        let mut m = match vip.addr {
            IpAddr::V4(a) => rtnetlink::AddressMessageBuilder::<std::net::Ipv4Addr>::new()
                .index(vip.ifindex)
                .address(a, vip.prefix)
                .build(),
            IpAddr::V6(a) => rtnetlink::AddressMessageBuilder::<std::net::Ipv6Addr>::new()
                .index(vip.ifindex)
                .address(a, vip.prefix)
                .build(),
        };
        if let (Some(label), IpAddr::V4(_)) = (&vip.label, vip.addr) {
            m.attributes.push(AddressAttribute::Label(label.clone()));
        }
        m
    }

    /// Adds `vip` valid for `lifetime_s` seconds, or renews that lifetime if it is there.
    pub fn add_or_renew(&self, vip: &Vip, lifetime_s: u32) -> Result<()> {
        let mut req = self.handle.address().add(vip.ifindex, vip.addr, vip.prefix).replace();
        *req.message_mut() = Self::message(vip);
        let mut lifetime = CacheInfo::default();
        lifetime.ifa_preferred = lifetime_s;
        lifetime.ifa_valid = lifetime_s;
        req.message_mut().attributes.push(AddressAttribute::CacheInfo(lifetime));
        self.rt.block_on(req.execute()).map_err(nl("add virtual address"))
    }

    /// Removes `vip`; an address that is not there is not an error.
    pub fn remove(&self, vip: &Vip) -> Result<()> {
        match self.rt.block_on(self.handle.address().del(Self::message(vip)).execute()) {
            Err(e) if !is_absent(&e) => Err(nl("remove virtual address")(e)),
            _ => Ok(()),
        }
    }
}
