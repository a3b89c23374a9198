//! `POST /containers/create` as dockerd's router adjusts it for the request's version before the
//! daemon sees it: fields older clients could not have meant are dropped, requests they could
//! not have made are refused, deprecated fields are moved, and warnings are added.

use berth_api_types::container::{CreateRequest, Mount, PortBinding};
use berth_api_types::ApiError;

use super::{Behaviour, Change};

/// The warning for a container-wide `Config.MacAddress` (API 1.44 to 1.51).
pub const MAC_ADDRESS_WARNING: &str = "The container-wide MacAddress field is now deprecated. It should be specified in EndpointsConfig instead.";

/// The warning for `HostConfig.VolumeDriver` next to `Mounts` of type volume (API 1.48+).
pub const VOLUME_DRIVER_WARNING: &str = "WARNING: the container-wide volume-driver configuration is ignored for volumes specified via 'mount'. Use '--mount type=volume,volume-driver=...' instead";

/// Adjusts `req` for behaviour `b`; returns the warnings to add to the answer.
pub fn adjust(req: &mut CreateRequest, b: Behaviour) -> Result<Vec<String>, ApiError> {
    let mut warnings = Vec::new();
    if !b.has(Change::CreatePlatform) {
        req.platform = None;
    }
    if !b.has(Change::HealthStartInterval) {
        if let Some(h) = req.config.healthcheck.as_mut() {
            h.start_interval = 0;
        }
    }
    endpoints(req, b)?;
    mac_address(req, b, &mut warnings)?;
    let Some(hc) = req.host_config.as_mut() else {
        return Ok(warnings);
    };
    if !b.has(Change::AutoRemove) {
        hc.auto_remove = false;
    }
    if !b.has(Change::IpcModePrivateDefault) && hc.ipc_mode.is_empty() {
        hc.ipc_mode = "shareable".to_string();
    }
    if !b.has(Change::ConsoleSizeOnCreate) {
        hc.console_size = None;
    }
    if !b.has(Change::HostConfigAnnotations) {
        hc.annotations = None;
    }
    for m in hc.mounts.iter_mut().flatten() {
        mount(m, b)?;
    }
    if b.has(Change::VolumeDriverWarning) && !hc.volume_driver.is_empty() {
        let unnamed_driver = hc.mounts.iter().flatten().any(|m| {
            m.kind == "volume"
                && m.volume_options
                    .as_ref()
                    .and_then(|o| o.get("DriverConfig"))
                    .and_then(|d| d.get("Name"))
                    .and_then(|n| n.as_str())
                    .is_none_or(str::is_empty)
        });
        if unnamed_driver {
            warnings.push(VOLUME_DRIVER_WARNING.to_string());
        }
    }
    if let Some(w) = empty_port_bindings(&mut hc.port_bindings, b) {
        warnings.push(w);
    }
    Ok(warnings)
}

/// `Mounts` entries: options on the wrong type, subpaths and image mounts by version.
fn mount(m: &mut Mount, b: Behaviour) -> Result<(), ApiError> {
    let options = [
        ("VolumeOptions", "volume"),
        ("BindOptions", "bind"),
        ("TmpfsOptions", "tmpfs"),
    ];
    for (field, kind) in options {
        let slot = match field {
            "VolumeOptions" => &mut m.volume_options,
            "BindOptions" => &mut m.bind_options,
            _ => &mut m.tmpfs_options,
        };
        if slot.is_some() && m.kind != kind {
            if b.has(Change::MountOptionsTypeChecked) {
                return Err(ApiError::invalid(format!(
                    "{field} must not be specified on mount type {:?}",
                    m.kind
                )));
            }
            *slot = None;
        }
    }
    if !b.has(Change::VolumeSubpath)
        && m.volume_options
            .as_ref()
            .and_then(|o| o.get("Subpath"))
            .and_then(|s| s.as_str())
            .is_some_and(|s| !s.is_empty())
    {
        return Err(ApiError::invalid(
            "VolumeOptions.Subpath needs API v1.45 or newer",
        ));
    }
    if !b.has(Change::RecursiveReadOnly) && m.kind == "bind" && m.read_only {
        // As dockerd: older clients keep the non-recursive read-only binds they knew.
        let mut opts = m
            .bind_options
            .take()
            .unwrap_or_else(|| serde_json::json!({}));
        if let Some(o) = opts.as_object_mut() {
            o.insert("ReadOnlyNonRecursive".into(), serde_json::Value::Bool(true));
            o.remove("ReadOnlyForceRecursive");
        }
        m.bind_options = Some(opts);
    }
    if !b.has(Change::ImageMounts) && m.kind == "image" {
        return Err(ApiError::invalid(
            r#"Mount type "Image" needs API v1.48 or newer"#,
        ));
    }
    Ok(())
}

/// `NetworkingConfig.EndpointsConfig`: one entry only before 1.44; no gateway priority
/// before 1.48.
fn endpoints(req: &mut CreateRequest, b: Behaviour) -> Result<(), ApiError> {
    let Some(eps) = req
        .networking_config
        .as_mut()
        .and_then(|n| n.endpoints_config.as_mut())
    else {
        return Ok(());
    };
    if !b.has(Change::MultipleEndpointsOnCreate) && eps.len() > 1 {
        let names: Vec<&str> = eps.keys().map(String::as_str).collect();
        return Err(ApiError::invalid(format!(
            "Container cannot be created with multiple network endpoints: {}",
            names.join(", ")
        )));
    }
    if !b.has(Change::GatewayPriority) {
        for ep in eps.values_mut() {
            ep.gw_priority = 0;
        }
    }
    Ok(())
}

/// The main network's name as `EndpointsConfig` keys it (`bridge` for the default).
fn main_network(req: &CreateRequest) -> String {
    match req.host_config.as_ref().map(|h| h.network_mode.as_str()) {
        None | Some("") | Some("default") => "bridge".to_string(),
        Some(m) => m.to_string(),
    }
}

/// The container-wide `Config.MacAddress`: the only MAC before 1.44 (endpoint MACs ignored),
/// deprecated with a warning until 1.51 (the daemon moves it to the main network's endpoint),
/// not read from 1.52.
fn mac_address(
    req: &mut CreateRequest,
    b: Behaviour,
    warnings: &mut Vec<String>,
) -> Result<(), ApiError> {
    let wide = req.config.mac_address.clone().filter(|m| !m.is_empty());
    if b.has(Change::ContainerWideMacAddressRemoved) {
        req.config.mac_address = None;
        return Ok(());
    }
    let main = main_network(req);
    let eps = req
        .networking_config
        .as_mut()
        .and_then(|n| n.endpoints_config.as_mut());
    if !b.has(Change::EndpointMacAddress) {
        for ep in eps.into_iter().flat_map(|e| e.values_mut()) {
            ep.mac_address.clear();
        }
        return Ok(());
    }
    let Some(wide) = wide else {
        return Ok(());
    };
    if let Some(ep) = eps.and_then(|e| e.get(&main)) {
        if !ep.mac_address.is_empty() && ep.mac_address != wide {
            return Err(ApiError::invalid(
                "the container-wide MAC address must match the endpoint-specific MAC address for the main network, or be left empty",
            ));
        }
    }
    warnings.push(MAC_ADDRESS_WARNING.to_string());
    Ok(())
}

/// Empty `PortBindings` lists: a random host port until 1.52 (1.52 warns), nothing from 1.53.
fn empty_port_bindings(
    bindings: &mut Option<berth_api_types::container::PortMap>,
    b: Behaviour,
) -> Option<String> {
    let map = bindings.as_mut()?;
    let empty: Vec<String> = map
        .iter()
        .filter(|(_, l)| l.as_ref().is_none_or(Vec::is_empty))
        .map(|(k, _)| k.clone())
        .collect();
    if empty.is_empty() {
        return None;
    }
    for k in &empty {
        if b.has(Change::EmptyPortBindingsDropped) {
            map.remove(k);
        } else {
            map.insert(k.clone(), Some(vec![PortBinding::default()]));
        }
    }
    (b.has(Change::EmptyPortBindingsWarning) && !b.has(Change::EmptyPortBindingsDropped)).then(|| {
        format!(
            "Following container port(s) have an empty list of port-bindings: {}. Starting with API 1.53, such bindings will be discarded.",
            empty.join(", ")
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::version::ApiVersion;
    use serde_json::json;

    fn at(s: &str) -> Behaviour {
        Behaviour::new(ApiVersion::parse(s).unwrap())
    }

    fn req(v: serde_json::Value) -> CreateRequest {
        serde_json::from_value(v).expect("create request")
    }

    #[test]
    fn old_clients_lose_new_fields() {
        let body = json!({"Image": "busybox", "Healthcheck": {"StartInterval": 5},
            "HostConfig": {"AutoRemove": true, "ConsoleSize": [10, 20],
                "Annotations": {"a": "b"}}});
        let mut r = req(body.clone());
        r.platform = Some("linux/amd64".into());
        assert!(adjust(&mut r, at("1.24")).unwrap().is_empty());
        let hc = r.host_config.as_ref().unwrap();
        assert!(!hc.auto_remove && hc.console_size.is_none() && hc.annotations.is_none());
        assert_eq!(hc.ipc_mode, "shareable");
        assert_eq!(r.config.healthcheck.as_ref().unwrap().start_interval, 0);
        assert!(r.platform.is_none());
        let mut r = req(body);
        r.platform = Some("linux/amd64".into());
        adjust(&mut r, at("1.55")).unwrap();
        let hc = r.host_config.as_ref().unwrap();
        assert!(hc.auto_remove && hc.console_size.is_some() && hc.annotations.is_some());
        assert_eq!(hc.ipc_mode, "");
        assert_eq!(r.config.healthcheck.as_ref().unwrap().start_interval, 5);
        assert!(r.platform.is_some());
    }

    #[test]
    fn mount_options_on_the_wrong_type() {
        let body = json!({"Image": "b", "HostConfig": {"Mounts": [
            {"Type": "bind", "Source": "/tmp", "Target": "/x", "VolumeOptions": {"NoCopy": true}}]}});
        let mut r = req(body.clone());
        adjust(&mut r, at("1.41")).unwrap();
        assert!(r.host_config.unwrap().mounts.unwrap()[0]
            .volume_options
            .is_none());
        let mut r = req(body);
        assert_eq!(
            adjust(&mut r, at("1.42")).unwrap_err().message,
            r#"VolumeOptions must not be specified on mount type "bind""#
        );
        let mut r = req(json!({"Image": "b", "HostConfig": {"Mounts": [
            {"Type": "volume", "Target": "/x", "VolumeOptions": {"Subpath": "a"}}]}}));
        assert!(adjust(&mut r, at("1.44")).is_err());
        let mut r = req(json!({"Image": "b", "HostConfig": {"Mounts": [
            {"Type": "image", "Source": "busybox", "Target": "/x"}]}}));
        assert!(adjust(&mut r, at("1.47")).is_err());
        assert!(adjust(&mut r, at("1.48")).is_ok());
    }

    #[test]
    fn read_only_binds_of_old_clients_stay_non_recursive() {
        let body = json!({"Image": "b", "HostConfig": {"Mounts": [
            {"Type": "bind", "Source": "/tmp", "Target": "/x", "ReadOnly": true,
             "BindOptions": {"ReadOnlyForceRecursive": true, "Propagation": "rprivate"}},
            {"Type": "bind", "Source": "/tmp", "Target": "/y"}]}});
        let mut r = req(body.clone());
        adjust(&mut r, at("1.43")).unwrap();
        let mounts = r.host_config.unwrap().mounts.unwrap();
        assert_eq!(
            mounts[0].bind_options,
            Some(json!({"ReadOnlyNonRecursive": true, "Propagation": "rprivate"}))
        );
        assert_eq!(
            mounts[1].bind_options, None,
            "writable binds are left alone"
        );
        let mut r = req(body);
        adjust(&mut r, at("1.44")).unwrap();
        let opts = r.host_config.unwrap().mounts.unwrap()[0]
            .bind_options
            .clone();
        assert_eq!(opts.unwrap()["ReadOnlyForceRecursive"], json!(true));
    }

    #[test]
    fn endpoints_by_version() {
        let body = json!({"Image": "b", "NetworkingConfig": {"EndpointsConfig": {
            "a": {"GwPriority": 5}, "b": {}}}});
        let mut r = req(body.clone());
        assert_eq!(
            adjust(&mut r, at("1.43")).unwrap_err().message,
            "Container cannot be created with multiple network endpoints: a, b"
        );
        let mut r = req(body.clone());
        adjust(&mut r, at("1.47")).unwrap();
        let eps = r.networking_config.unwrap().endpoints_config.unwrap();
        assert_eq!(eps["a"].gw_priority, 0);
        let mut r = req(body);
        adjust(&mut r, at("1.48")).unwrap();
        let eps = r.networking_config.unwrap().endpoints_config.unwrap();
        assert_eq!(eps["a"].gw_priority, 5);
    }

    #[test]
    fn container_wide_mac_address() {
        let body = json!({"Image": "b", "MacAddress": "02:42:ac:11:00:09",
            "NetworkingConfig": {"EndpointsConfig": {"bridge": {"MacAddress": "02:42:ac:11:00:09"}}}});
        let mut r = req(body.clone());
        assert!(adjust(&mut r, at("1.43")).unwrap().is_empty());
        assert_eq!(r.config.mac_address.as_deref(), Some("02:42:ac:11:00:09"));
        let eps = r.networking_config.unwrap().endpoints_config.unwrap();
        assert_eq!(
            eps["bridge"].mac_address, "",
            "endpoint MACs are ignored below 1.44"
        );
        let mut r = req(body.clone());
        assert_eq!(
            adjust(&mut r, at("1.44")).unwrap(),
            vec![MAC_ADDRESS_WARNING]
        );
        let mut r = req(body.clone());
        assert!(adjust(&mut r, at("1.52")).unwrap().is_empty());
        assert!(r.config.mac_address.is_none());
        let mut r = req(json!({"Image": "b", "MacAddress": "02:42:ac:11:00:09",
            "NetworkingConfig": {"EndpointsConfig": {"bridge": {"MacAddress": "02:42:ac:11:00:01"}}}}));
        assert!(adjust(&mut r, at("1.51")).is_err());
    }

    #[test]
    fn empty_port_binding_lists() {
        let body = json!({"Image": "b", "HostConfig": {"PortBindings": {
            "80/tcp": [], "81/tcp": null, "82/tcp": [{"HostPort": "8082"}]}}});
        let mut r = req(body.clone());
        assert!(adjust(&mut r, at("1.51")).unwrap().is_empty());
        let pb = r.host_config.unwrap().port_bindings.unwrap();
        assert_eq!(pb["80/tcp"], Some(vec![PortBinding::default()]));
        assert_eq!(pb["81/tcp"], Some(vec![PortBinding::default()]));
        let mut r = req(body.clone());
        let w = adjust(&mut r, at("1.52")).unwrap();
        assert_eq!(w, vec!["Following container port(s) have an empty list of port-bindings: 80/tcp, 81/tcp. Starting with API 1.53, such bindings will be discarded.".to_string()]);
        let mut r = req(body);
        assert!(adjust(&mut r, at("1.53")).unwrap().is_empty());
        let pb = r.host_config.unwrap().port_bindings.unwrap();
        assert!(!pb.contains_key("80/tcp") && !pb.contains_key("81/tcp"));
        assert_eq!(pb["82/tcp"].as_ref().unwrap()[0].host_port, "8082");
    }
}
