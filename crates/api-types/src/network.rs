//! `/networks` wire types.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::container::EndpointSettings;

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase", default)]
pub struct IpamConfig {
    #[serde(skip_serializing_if = "String::is_empty")]
    pub subnet: String,
    #[serde(rename = "IPRange", skip_serializing_if = "String::is_empty")]
    pub ip_range: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub gateway: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub auxiliary_addresses: Option<BTreeMap<String, String>>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase", default)]
pub struct Ipam {
    pub driver: String,
    pub options: Option<BTreeMap<String, String>>,
    pub config: Option<Vec<IpamConfig>>,
}

/// `POST /networks/create`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase", default)]
pub struct CreateRequest {
    pub name: String,
    pub driver: String,
    pub scope: String,
    pub internal: bool,
    pub attachable: bool,
    pub ingress: bool,
    #[serde(rename = "IPAM")]
    pub ipam: Option<Ipam>,
    #[serde(rename = "EnableIPv4")]
    pub enable_ipv4: Option<bool>,
    #[serde(rename = "EnableIPv6")]
    pub enable_ipv6: Option<bool>,
    pub options: Option<BTreeMap<String, String>>,
    pub labels: Option<BTreeMap<String, String>>,
    pub check_duplicate: Option<bool>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct CreateResponse {
    pub id: String,
    pub warning: String,
}

/// A member of a network as `GET /networks/{id}` lists it.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase", default)]
pub struct EndpointResource {
    pub name: String,
    #[serde(rename = "EndpointID")]
    pub endpoint_id: String,
    pub mac_address: String,
    #[serde(rename = "IPv4Address")]
    pub ipv4_address: String,
    #[serde(rename = "IPv6Address")]
    pub ipv6_address: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase", default)]
pub struct ConfigReference {
    pub network: String,
}

/// `GET /networks/{id}` and the entries of `GET /networks`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase", default)]
pub struct Network {
    pub name: String,
    pub id: String,
    pub created: String,
    pub scope: String,
    pub driver: String,
    #[serde(rename = "EnableIPv4")]
    pub enable_ipv4: bool,
    #[serde(rename = "EnableIPv6")]
    pub enable_ipv6: bool,
    #[serde(rename = "IPAM")]
    pub ipam: Ipam,
    pub internal: bool,
    pub attachable: bool,
    pub ingress: bool,
    pub config_from: ConfigReference,
    pub config_only: bool,
    pub containers: BTreeMap<String, EndpointResource>,
    pub options: BTreeMap<String, String>,
    pub labels: BTreeMap<String, String>,
}

/// `POST /networks/{id}/connect`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase", default)]
pub struct ConnectRequest {
    pub container: String,
    pub endpoint_config: Option<EndpointSettings>,
}

/// `POST /networks/{id}/disconnect`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase", default)]
pub struct DisconnectRequest {
    pub container: String,
    pub force: bool,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase", default)]
pub struct PruneResponse {
    pub networks_deleted: Option<Vec<String>>,
}
