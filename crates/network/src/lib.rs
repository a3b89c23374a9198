//! berth's networking primitives: address management (IPAM), nftables rule generation, and
//! the kernel-facing operations (bridge, veth, addresses, routes, network namespaces).
//!
//! IPAM ([`ipam`]) and rule generation ([`nft`]) are pure and unit-tested. Everything that
//! touches the kernel sits behind the [`ops::LinkOps`] trait; the shipped implementation
//! ([`ops::Rtnetlink`]) speaks rtnetlink directly through a small synchronous client
//! ([`netlink`]), and nftables rules are applied as one atomic script through the `nft` binary.

pub mod dns;
pub mod hostfw;
pub mod ipam;
pub mod netlink;
pub mod netns;
pub mod nft;
pub mod ops;

/// Errors of the networking layer.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("invalid CIDR address: {0}")]
    InvalidCidr(String),
    #[error("invalid address: {0}")]
    InvalidAddress(String),
    #[error("no available {family} addresses on this network's address pools: {subnet}")]
    PoolExhausted {
        family: &'static str,
        subnet: String,
    },
    #[error("Address already in use")]
    AddressInUse(String),
    #[error("address {addr} is not in subnet {subnet}")]
    OutsideSubnet { addr: String, subnet: String },
    #[error("{what}: {detail}")]
    Command { what: String, detail: String },
    /// An item of `com.docker.network.endpoint.sysctls` that is not a per-interface sysctl.
    #[error(
        "unrecognised network interface sysctl '{0}'; represent 'net.X.Y.ethN.Z=V' as 'net.X.Y.IFNAME.Z=V', 'X' must be 'ipv4', 'ipv6' or 'mpls'"
    )]
    EndpointSysctl(String),
    /// An upstream DNS server that is neither `ip` nor `ip:port`.
    #[error("{0} is not an ip address")]
    NotAnIp(String),
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
}

pub type Result<T> = std::result::Result<T, Error>;

pub(crate) fn io_err(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> Error {
    let what = what.into();
    move |source| Error::Io { what, source }
}
