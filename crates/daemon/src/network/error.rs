//! Why the network service could not do something: a daemon flag it cannot use, the kernel
//! (links, nftables) refusing, or its records. None is the client's to fix (500).

use std::path::PathBuf;

use berth_api_types::ErrorKind;

use crate::errors::{into_api_error, Classified};
use crate::network_v6::Reserved;

#[derive(Debug, thiserror::Error)]
pub enum NetError {
    #[error("--fixed-cidr-v6 {0} needs --ipv6")]
    V6WithoutIpv6(String),
    #[error("invalid --fixed-cidr-v6 {0:?}: not an IPv6 CIDR")]
    V6NotCidr(String),
    #[error("invalid --fixed-cidr-v6 {subnet}: {cause}")]
    V6Reserved { subnet: String, cause: Reserved },
    #[error("--fixed-cidr-v6 {subnet}: {source}")]
    V6Pool {
        subnet: String,
        source: berth_network::Error,
    },
    #[error("invalid --bip {bip:?}: {source}")]
    Bip {
        bip: String,
        source: berth_network::Error,
    },
    #[error("invalid --bip {bip:?}: {cause}")]
    BipReserved { bip: String, cause: Reserved },
    #[error("--bip: {0}")]
    BipPool(berth_network::Error),
    #[error("--dns: {0}")]
    Dns(berth_network::Error),
    #[error("starting the DNS thread: {0}")]
    DnsThread(std::io::Error),
    /// A link, address, pool or nftables operation.
    #[error(transparent)]
    Kernel(#[from] berth_network::Error),
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    /// Recording a container's endpoints under `<exec-root>/network/endpoints`.
    #[error("{source}")]
    Persist {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Encode(#[from] serde_json::Error),
}

impl Classified for NetError {
    fn kind(&self) -> ErrorKind {
        ErrorKind::Internal
    }
}

into_api_error!(NetError);
