//! The fields of a response as the request's API version has them. The services answer with
//! the newest shape (the wire types of api-types); these functions take fields away for newer
//! versions or put back what older clients still read, as dockerd's routers do.

use serde_json::{Map, Value};

use super::{Behaviour, Change};

/// The top-level `NetworkSettings` fields API 1.52 removed (filled from the default bridge
/// network before that).
pub const LEGACY_NETWORK_SETTINGS: [&str; 14] = [
    "Bridge",
    "HairpinMode",
    "LinkLocalIPv6Address",
    "LinkLocalIPv6PrefixLen",
    "SecondaryIPAddresses",
    "SecondaryIPv6Addresses",
    "EndpointID",
    "Gateway",
    "GlobalIPv6Address",
    "GlobalIPv6PrefixLen",
    "IPAddress",
    "IPPrefixLen",
    "IPv6Gateway",
    "MacAddress",
];

/// Networks that are not user-defined (their endpoints get no extra aliases).
const BUILTIN_NETWORKS: [&str; 4] = ["bridge", "host", "none", "default"];

fn obj(v: &mut Value) -> Option<&mut Map<String, Value>> {
    v.as_object_mut()
}

/// Whether a Go `omitempty` field would be left out: null, "", [] or {}.
fn go_empty(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
        Value::Bool(b) => !b,
        Value::Number(n) => n.as_f64() == Some(0.0),
    }
}

/// `GET /containers/json`.
pub fn container_summaries(list: &mut Value, b: Behaviour) {
    let Some(items) = list.as_array_mut() else {
        return;
    };
    for c in items.iter_mut().filter_map(obj) {
        if !b.has(Change::ListHealth) {
            c.remove("Health");
        }
        if !b.has(Change::ListAnnotations) {
            if let Some(hc) = c.get_mut("HostConfig").and_then(obj) {
                hc.remove("Annotations");
            }
        }
    }
}

/// `GET /containers/{id}/json`.
pub fn container_inspect(v: &mut Value, b: Behaviour) {
    let Some(c) = obj(v) else {
        return;
    };
    if !b.has(Change::AliasesAsSubmitted) {
        add_legacy_aliases(c);
    }
    if b.has(Change::LegacyNetworkSettingsRemoved) {
        if let Some(ns) = c.get_mut("NetworkSettings").and_then(obj) {
            for k in LEGACY_NETWORK_SETTINGS {
                ns.remove(k);
            }
        }
        if let Some(cfg) = c.get_mut("Config").and_then(obj) {
            cfg.remove("MacAddress");
        }
    } else if let Some(cfg) = c.get_mut("Config").and_then(obj) {
        // Until 1.51 Config.MacAddress is the MAC the user asked for, omitted when none.
        if cfg.get("MacAddress").is_some_and(go_empty) {
            cfg.remove("MacAddress");
        }
    }
    if b.has(Change::InspectOnBuildOmittedWhenEmpty) {
        if let Some(cfg) = c.get_mut("Config").and_then(obj) {
            if cfg.get("OnBuild").is_some_and(go_empty) {
                cfg.remove("OnBuild");
            }
        }
    }
}

/// API < 1.45: the short id and the hostname are aliases on every user-defined network.
fn add_legacy_aliases(c: &mut Map<String, Value>) {
    let short: String = c
        .get("Id")
        .and_then(Value::as_str)
        .unwrap_or("")
        .chars()
        .take(12)
        .collect();
    let hostname = c
        .get("Config")
        .and_then(|cfg| cfg.get("Hostname"))
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let Some(nets) = c
        .get_mut("NetworkSettings")
        .and_then(|ns| ns.get_mut("Networks"))
        .and_then(obj)
    else {
        return;
    };
    for (name, ep) in nets.iter_mut() {
        if BUILTIN_NETWORKS.contains(&name.as_str()) || name.starts_with("container:") {
            continue;
        }
        let Some(ep) = obj(ep) else { continue };
        let mut aliases: Vec<Value> = ep
            .get("Aliases")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        for extra in [&short, &hostname] {
            if !extra.is_empty() && !aliases.iter().any(|a| a.as_str() == Some(extra)) {
                aliases.push(Value::String(extra.clone()));
            }
        }
        ep.insert("Aliases".into(), Value::Array(aliases));
    }
}

/// `GET /images/json` (and the images of `system df`).
pub fn image_summaries(list: &mut Value, b: Behaviour) {
    let Some(items) = list.as_array_mut() else {
        return;
    };
    for i in items.iter_mut().filter_map(obj) {
        if !b.has(Change::ImageListNoneTagsRemoved) {
            let untagged = |k: &str| i.get(k).is_none_or(go_empty);
            if untagged("RepoTags") && untagged("RepoDigests") {
                i.insert("RepoTags".into(), serde_json::json!(["<none>:<none>"]));
                i.insert("RepoDigests".into(), serde_json::json!(["<none>@<none>"]));
            }
        }
        if !b.has(Change::ImageListContainersCount) {
            i.insert("Containers".into(), Value::from(-1));
        }
        virtual_size(i, b);
    }
}

/// API < 1.44 has `VirtualSize` (the same as `Size`); later versions do not.
pub fn virtual_size(i: &mut Map<String, Value>, b: Behaviour) {
    if b.has(Change::VirtualSizeRemoved) {
        i.remove("VirtualSize");
    } else {
        let size = i.get("Size").cloned().unwrap_or(Value::from(0));
        i.insert("VirtualSize".into(), size);
    }
}

/// The image `Config` fields that come from the container config type and are no image
/// configuration (API 1.50 dropped them).
const CONTAINER_ONLY_CONFIG: [(&str, Value); 9] = [
    ("Hostname", Value::String(String::new())),
    ("Domainname", Value::String(String::new())),
    ("AttachStdin", Value::Bool(false)),
    ("AttachStdout", Value::Bool(false)),
    ("AttachStderr", Value::Bool(false)),
    ("Tty", Value::Bool(false)),
    ("OpenStdin", Value::Bool(false)),
    ("StdinOnce", Value::Bool(false)),
    ("Image", Value::String(String::new())),
];

/// The image `Config` fields omitted when not set from API 1.52 (as in the OCI image spec).
const OMITTED_CONFIG: [&str; 8] = [
    "Cmd",
    "Entrypoint",
    "Env",
    "Labels",
    "OnBuild",
    "User",
    "Volumes",
    "WorkingDir",
];

/// `GET /images/{name}/json`.
pub fn image_inspect(v: &mut Value, b: Behaviour) {
    let Some(i) = obj(v) else {
        return;
    };
    virtual_size(i, b);
    if !b.has(Change::ImageInspectCreatedOmitted) && i.get("Created").is_none_or(go_empty) {
        i.insert("Created".into(), Value::from("0001-01-01T00:00:00Z"));
    }
    if b.has(Change::ImageInspectCreatedOmitted) && i.get("Created").is_some_and(go_empty) {
        i.remove("Created");
    }
    if !b.has(Change::ImageInspectContainerFieldsRemoved) {
        let config = i.get("Config").cloned().unwrap_or(Value::Null);
        i.entry("Container").or_insert(Value::from(""));
        i.entry("ContainerConfig").or_insert(config);
    }
    if b.has(Change::ImageInspectEmptyFieldsOmitted) {
        for k in ["Parent", "Comment", "DockerVersion", "Author"] {
            if i.get(k).is_some_and(go_empty) {
                i.remove(k);
            }
        }
    }
    if let Some(cfg) = i.get_mut("Config").and_then(obj) {
        if b.has(Change::ImageConfigContainerFieldsRemoved) {
            for (k, _) in &CONTAINER_ONLY_CONFIG {
                cfg.remove(*k);
            }
        } else {
            for (k, zero) in &CONTAINER_ONLY_CONFIG {
                cfg.entry(*k).or_insert(zero.clone());
            }
        }
        if b.has(Change::ImageInspectEmptyFieldsOmitted) {
            for k in OMITTED_CONFIG {
                if cfg.get(k).is_some_and(go_empty) {
                    cfg.remove(k);
                }
            }
        }
    }
}

/// `GET /info`.
pub fn info(v: &mut Value, b: Behaviour) {
    let Some(i) = obj(v) else {
        return;
    };
    if b.has(Change::InfoKernelMemoryTcpRemoved) {
        i.remove("KernelMemoryTCP");
    }
    if !b.has(Change::InfoBridgeNfRemoved) {
        i.insert("BridgeNfIptables".into(), Value::Bool(false));
        i.insert("BridgeNfIp6tables".into(), Value::Bool(false));
    }
    if b.has(Change::InfoFirewallBackend) {
        i.insert(
            "FirewallBackend".into(),
            serde_json::json!({"Driver": "nftables"}),
        );
    }
    if !b.has(Change::InfoCommitExpectedRemoved) {
        for k in ["ContainerdCommit", "RuncCommit", "InitCommit"] {
            if let Some(c) = i.get_mut(k).and_then(obj) {
                let id = c.get("ID").cloned().unwrap_or(Value::from(""));
                c.insert("Expected".into(), id);
            }
        }
    }
    if !b.has(Change::InfoRegistryNondistributableRemoved) {
        if let Some(r) = i.get_mut("RegistryConfig").and_then(obj) {
            r.insert("AllowNondistributableArtifactsCIDRs".into(), Value::Null);
            r.insert(
                "AllowNondistributableArtifactsHostnames".into(),
                Value::Null,
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::version::ApiVersion;
    use serde_json::json;

    fn at(s: &str) -> Behaviour {
        Behaviour::new(ApiVersion::parse(s).unwrap())
    }

    #[test]
    fn summaries_get_health_from_1_52() {
        let list = json!([{"Id": "x", "Health": {"Status": "none", "FailingStreak": 0},
            "HostConfig": {"NetworkMode": "bridge", "Annotations": {"a": "b"}}}]);
        let mut old = list.clone();
        container_summaries(&mut old, at("1.51"));
        assert!(old[0].get("Health").is_none());
        assert_eq!(old[0]["HostConfig"]["Annotations"]["a"], "b");
        let mut older = list.clone();
        container_summaries(&mut older, at("1.45"));
        assert!(older[0]["HostConfig"].get("Annotations").is_none());
        let mut new = list;
        container_summaries(&mut new, at("1.52"));
        assert_eq!(new[0]["Health"]["Status"], "none");
    }

    fn inspected() -> Value {
        json!({
            "Id": "0123456789abcdef0123",
            "Config": {"Hostname": "web", "OnBuild": null, "MacAddress": "02:42:ac:11:00:09"},
            "NetworkSettings": {
                "Bridge": "", "IPAddress": "172.17.0.2", "Gateway": "172.17.0.1",
                "MacAddress": "02:42:ac:11:00:02", "IPPrefixLen": 16, "SandboxKey": "/x",
                "Networks": {
                    "bridge": {"Aliases": null},
                    "mynet": {"Aliases": ["db"]}
                }
            }
        })
    }

    #[test]
    fn inspect_legacy_network_fields_until_1_51() {
        let mut old = inspected();
        container_inspect(&mut old, at("1.51"));
        assert_eq!(old["NetworkSettings"]["IPAddress"], "172.17.0.2");
        assert_eq!(old["Config"]["MacAddress"], "02:42:ac:11:00:09");
        let mut unset = inspected();
        unset["Config"]["MacAddress"] = Value::Null;
        container_inspect(&mut unset, at("1.51"));
        assert!(
            unset["Config"].get("MacAddress").is_none(),
            "omitted when not asked for"
        );
        assert!(old["Config"].get("OnBuild").is_some());
        let mut new = inspected();
        container_inspect(&mut new, at("1.52"));
        for k in LEGACY_NETWORK_SETTINGS {
            assert!(new["NetworkSettings"].get(k).is_none(), "{k}");
        }
        assert_eq!(new["NetworkSettings"]["SandboxKey"], "/x");
        assert!(new["Config"].get("MacAddress").is_none());
        assert!(new["Config"].get("OnBuild").is_none());
    }

    #[test]
    fn inspect_aliases_below_1_45() {
        let mut old = inspected();
        container_inspect(&mut old, at("1.44"));
        assert_eq!(
            old["NetworkSettings"]["Networks"]["mynet"]["Aliases"],
            json!(["db", "0123456789ab", "web"])
        );
        assert!(old["NetworkSettings"]["Networks"]["bridge"]["Aliases"].is_null());
        let mut new = inspected();
        container_inspect(&mut new, at("1.45"));
        assert_eq!(
            new["NetworkSettings"]["Networks"]["mynet"]["Aliases"],
            json!(["db"])
        );
    }

    #[test]
    fn image_list_by_version() {
        let list = json!([{"Id": "sha256:a", "RepoTags": [], "RepoDigests": [], "Size": 5,
            "VirtualSize": 5, "Containers": 2}]);
        let mut v42 = list.clone();
        image_summaries(&mut v42, at("1.42"));
        assert_eq!(v42[0]["RepoTags"], json!(["<none>:<none>"]));
        assert_eq!(v42[0]["RepoDigests"], json!(["<none>@<none>"]));
        assert_eq!(v42[0]["VirtualSize"], 5);
        assert_eq!(v42[0]["Containers"], -1);
        let mut v51 = list;
        image_summaries(&mut v51, at("1.51"));
        assert_eq!(v51[0]["RepoTags"], json!([]));
        assert!(v51[0].get("VirtualSize").is_none());
        assert_eq!(v51[0]["Containers"], 2);
    }

    #[test]
    fn image_inspect_by_version() {
        let img = json!({"Id": "sha256:a", "Parent": "", "Comment": "", "Author": "",
            "DockerVersion": "", "Created": "2024-01-01T00:00:00Z", "Size": 3,
            "Config": {"Cmd": ["sh"], "Env": null, "User": "", "Hostname": "",
                "Tty": false, "Labels": null}});
        let mut v43 = img.clone();
        image_inspect(&mut v43, at("1.43"));
        assert_eq!(v43["VirtualSize"], 3);
        assert_eq!(v43["Container"], "");
        assert_eq!(v43["ContainerConfig"]["Cmd"], json!(["sh"]));
        assert_eq!(v43["Config"]["AttachStdin"], false);
        let mut v51 = img.clone();
        image_inspect(&mut v51, at("1.51"));
        assert!(v51.get("VirtualSize").is_none() && v51.get("Container").is_none());
        assert!(v51["Config"].get("Hostname").is_none());
        assert_eq!(v51["Parent"], "");
        assert!(v51["Config"].get("Env").is_some());
        let mut v52 = img;
        image_inspect(&mut v52, at("1.52"));
        for k in ["Parent", "Comment", "Author", "DockerVersion"] {
            assert!(v52.get(k).is_none(), "{k}");
        }
        assert!(v52["Config"].get("Env").is_none());
        assert!(v52["Config"].get("User").is_none());
        assert_eq!(v52["Config"]["Cmd"], json!(["sh"]));
    }

    #[test]
    fn info_by_version() {
        let base = json!({"KernelMemoryTCP": false, "ContainerdCommit": {"ID": "c"},
            "RuncCommit": {"ID": ""}, "InitCommit": {"ID": ""}, "RegistryConfig": {"Mirrors": []}});
        let mut v46 = base.clone();
        info(&mut v46, at("1.46"));
        assert_eq!(v46["BridgeNfIptables"], false);
        assert_eq!(v46["ContainerdCommit"]["Expected"], "c");
        assert!(v46["RegistryConfig"]
            .as_object()
            .unwrap()
            .contains_key("AllowNondistributableArtifactsCIDRs"));
        assert!(v46.get("FirewallBackend").is_none());
        assert_eq!(v46["KernelMemoryTCP"], false);
        let mut v55 = base;
        info(&mut v55, at("1.55"));
        assert!(v55.get("BridgeNfIptables").is_none());
        assert!(v55["ContainerdCommit"].get("Expected").is_none());
        assert_eq!(v55["FirewallBackend"]["Driver"], "nftables");
        assert!(v55.get("KernelMemoryTCP").is_none());
    }
}
