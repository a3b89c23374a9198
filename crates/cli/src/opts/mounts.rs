//! `--mount` values (docker's `opts.MountOpt`).

use berth_api_types::container::Mount;
use serde_json::{json, Map, Value};

use super::OptsError;

/// One `--mount` value (CSV of `key=value`) as a `HostConfig.Mounts` entry, like docker's
/// `opts.MountOpt`.
pub fn parse_mount_flag(spec: &str) -> Result<Mount, OptsError> {
    let bad = |m: String| {
        OptsError(format!(
            "invalid argument \"{spec}\" for \"--mount\" flag: {m}"
        ))
    };
    let mut kind = "volume".to_string();
    let mut consistency = String::new();
    let mut bind = Map::new();
    let mut vol = Map::new();
    let mut tmpfs = Map::new();
    let mut labels = Map::new();
    let mut read_only = false;
    let mut source = String::new();
    let mut target = String::new();
    for field in spec.split(',').map(str::trim).filter(|f| !f.is_empty()) {
        let (key, value) = match field.split_once('=') {
            Some((k, v)) => (k.to_lowercase(), Some(v.to_string())),
            None => (field.to_lowercase(), None),
        };
        let need = || {
            value
                .clone()
                .ok_or_else(|| bad(format!("invalid field '{field}' must be a key=value pair")))
        };
        let boolean = |v: Option<String>| -> Result<bool, OptsError> {
            match v.as_deref() {
                None | Some("1") | Some("true") | Some("True") => Ok(true),
                Some("0") | Some("false") | Some("False") => Ok(false),
                Some(o) => Err(bad(format!("invalid value for {key}: {o}"))),
            }
        };
        match key.as_str() {
            "type" => kind = need()?,
            "source" | "src" => source = need()?,
            "target" | "dst" | "destination" => target = need()?,
            "readonly" | "ro" => read_only = boolean(value.clone())?,
            "consistency" => consistency = need()?,
            "bind-propagation" => {
                bind.insert("Propagation".into(), json!(need()?));
            }
            "bind-nonrecursive" => {
                bind.insert("NonRecursive".into(), json!(boolean(value.clone())?));
            }
            "volume-nocopy" => {
                vol.insert("NoCopy".into(), json!(boolean(value.clone())?));
            }
            "volume-label" => {
                let v = need()?;
                let (lk, lv) = v.split_once('=').unwrap_or((v.as_str(), ""));
                labels.insert(lk.to_string(), json!(lv));
            }
            "volume-driver" => {
                vol.insert("DriverConfig".into(), json!({"Name": need()?}));
            }
            "volume-subpath" => {
                vol.insert("Subpath".into(), json!(need()?));
            }
            "tmpfs-size" => {
                let size = crate::opts::parse_bytes(&need()?).map_err(|e| bad(e.0))?;
                tmpfs.insert("SizeBytes".into(), json!(size));
            }
            "tmpfs-mode" => {
                let v = need()?;
                let mode = u32::from_str_radix(&v, 8)
                    .map_err(|_| bad(format!("invalid value for {key}: {v}")))?;
                tmpfs.insert("Mode".into(), json!(mode));
            }
            _ => return Err(bad(format!("unexpected key '{key}' in '{field}'"))),
        }
    }
    if target.is_empty() {
        return Err(bad("target is required".into()));
    }
    if !labels.is_empty() {
        vol.insert("Labels".into(), Value::Object(labels));
    }
    let options = |m: Map<String, Value>| (!m.is_empty()).then_some(Value::Object(m));
    Ok(Mount {
        target,
        source,
        kind,
        read_only,
        consistency,
        bind_options: options(bind),
        volume_options: options(vol),
        tmpfs_options: options(tmpfs),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mount_flag_like_docker() {
        let mount = |spec| serde_json::to_value(parse_mount_flag(spec).unwrap()).unwrap();
        let m = mount("type=bind,src=/a,dst=/b,readonly,bind-propagation=rslave");
        assert_eq!(
            m,
            json!({"Type":"bind","Source":"/a","Target":"/b","ReadOnly":true,
                   "BindOptions":{"Propagation":"rslave"}})
        );
        let m = mount("type=tmpfs,target=/t,tmpfs-size=1m,tmpfs-mode=1770");
        assert_eq!(
            m["TmpfsOptions"],
            json!({"SizeBytes": 1048576, "Mode": 0o1770})
        );
        let m = mount("source=v,target=/v,volume-nocopy");
        assert_eq!(m["Type"], "volume");
        assert_eq!(m["VolumeOptions"]["NoCopy"], true);
        assert!(parse_mount_flag("type=bind,src=/a").is_err());
        assert!(parse_mount_flag("type=bind,bogus=1,dst=/x").is_err());
    }
}
