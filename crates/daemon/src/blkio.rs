//! Per-device block I/O rules in `POST /containers/{id}/update` (API 1.55+):
//! `BlkioWeightDevice` and `BlkioDevice{Read,Write}{Bps,IOps}`. A field that is absent or null
//! keeps the container's rules, an empty list clears them. A running container gets the new
//! rules written into its cgroup, and the rules of devices no longer listed reset.

use std::collections::BTreeSet;

use berth_api_types::container::{HostConfig, ThrottleDevice, WeightDevice};

use crate::resources::{w, CgroupPaths, CgroupWrite, DeviceError};

/// Resolves a device path to its (major, minor).
pub type DeviceNumber<'a> = &'a dyn Fn(&str) -> Result<(i64, i64), DeviceError>;

/// The per-device fields of an update body.
#[derive(Debug, Clone, Default, PartialEq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct DeviceRules {
    pub blkio_weight_device: Option<Vec<WeightDevice>>,
    pub blkio_device_read_bps: Option<Vec<ThrottleDevice>>,
    pub blkio_device_write_bps: Option<Vec<ThrottleDevice>>,
    #[serde(rename = "BlkioDeviceReadIOps")]
    pub blkio_device_read_iops: Option<Vec<ThrottleDevice>>,
    #[serde(rename = "BlkioDeviceWriteIOps")]
    pub blkio_device_write_iops: Option<Vec<ThrottleDevice>>,
}

impl DeviceRules {
    pub fn is_empty(&self) -> bool {
        self.blkio_weight_device.is_none()
            && self.blkio_device_read_bps.is_none()
            && self.blkio_device_write_bps.is_none()
            && self.blkio_device_read_iops.is_none()
            && self.blkio_device_write_iops.is_none()
    }

    /// Puts the given lists into `hc` (absent ones leave it as it is).
    pub fn merge_into(&self, hc: &mut HostConfig) {
        if let Some(l) = &self.blkio_weight_device {
            hc.blkio_weight_device = Some(l.clone());
        }
        for (new, slot) in [
            (&self.blkio_device_read_bps, &mut hc.blkio_device_read_bps),
            (&self.blkio_device_write_bps, &mut hc.blkio_device_write_bps),
            (&self.blkio_device_read_iops, &mut hc.blkio_device_read_iops),
            (
                &self.blkio_device_write_iops,
                &mut hc.blkio_device_write_iops,
            ),
        ] {
            if let Some(l) = new {
                *slot = Some(l.clone());
            }
        }
    }
}

/// Docker's range check of per-device weights, and every device path resolves (`dev`).
pub(crate) fn validate(hc: &HostConfig, dev: DeviceNumber<'_>) -> Result<(), DeviceError> {
    for (list, _, _) in throttles(hc) {
        for t in list.iter().flatten() {
            dev(&t.path)?;
        }
    }
    for wd in hc.blkio_weight_device.iter().flatten() {
        dev(&wd.path)?;
        if !(10..=1000).contains(&wd.weight) {
            return Err(DeviceError::WeightRange {
                weight: wd.weight,
                path: wd.path.clone(),
            });
        }
    }
    Ok(())
}

type Throttles<'a> = [(&'a Option<Vec<ThrottleDevice>>, &'static str, &'static str); 4];

fn throttles(hc: &HostConfig) -> Throttles<'_> {
    [
        (
            &hc.blkio_device_read_bps,
            "blkio.throttle.read_bps_device",
            "rbps",
        ),
        (
            &hc.blkio_device_write_bps,
            "blkio.throttle.write_bps_device",
            "wbps",
        ),
        (
            &hc.blkio_device_read_iops,
            "blkio.throttle.read_iops_device",
            "riops",
        ),
        (
            &hc.blkio_device_write_iops,
            "blkio.throttle.write_iops_device",
            "wiops",
        ),
    ]
}

/// The cgroup writes that take a running container from `old`'s per-device rules to `new`'s.
/// `dev` turns a device path into (major, minor). cgroup v1: one file per throttle and
/// a weight-device file (CFQ's or BFQ's, when the scheduler has one), 0 removing a rule;
/// v2: one `io.max` line per device, `max` where unlimited, and `io.bfq.weight` when present.
pub(crate) fn plan(
    old: &HostConfig,
    new: &HostConfig,
    paths: &CgroupPaths,
    dev: DeviceNumber<'_>,
) -> Result<Vec<CgroupWrite>, DeviceError> {
    let key = |path: &str| dev(path).map(|(a, b)| format!("{a}:{b}"));
    let mut out = Vec::new();
    if let Some(dir) = &paths.v2 {
        let mut devices = BTreeSet::new();
        let mut limits: Vec<(String, &'static str, u64)> = Vec::new();
        for (list, _, _) in throttles(old) {
            for t in list.iter().flatten() {
                devices.insert(key(&t.path)?);
            }
        }
        for (list, _, io_key) in throttles(new) {
            for t in list.iter().flatten() {
                let k = key(&t.path)?;
                devices.insert(k.clone());
                limits.push((k, io_key, t.rate));
            }
        }
        for d in devices {
            let value = ["rbps", "wbps", "riops", "wiops"]
                .iter()
                .map(|io_key| {
                    let rate = limits
                        .iter()
                        .find(|(k, kk, _)| *k == d && kk == io_key)
                        .map(|(_, _, r)| r.to_string())
                        .unwrap_or_else(|| "max".into());
                    format!("{io_key}={rate}")
                })
                .collect::<Vec<_>>()
                .join(" ");
            out.push(w(dir, "io.max", format!("{d} {value}")));
        }
        if dir.join("io.bfq.weight").exists() {
            for wd in new.blkio_weight_device.iter().flatten() {
                out.push(w(
                    dir,
                    "io.bfq.weight",
                    format!("{} {}", key(&wd.path)?, wd.weight),
                ));
            }
        }
        return Ok(out);
    }
    let Some(dir) = paths.v1("blkio") else {
        return Ok(out);
    };
    for ((old_list, file, _), (new_list, _, _)) in throttles(old).into_iter().zip(throttles(new)) {
        let mut kept = BTreeSet::new();
        for t in new_list.iter().flatten() {
            let k = key(&t.path)?;
            kept.insert(k.clone());
            out.push(w(dir, file, format!("{k} {}", t.rate)));
        }
        for t in old_list.iter().flatten() {
            let k = key(&t.path)?;
            if !kept.contains(&k) {
                out.push(w(dir, file, format!("{k} 0")));
            }
        }
    }
    // CFQ's `blkio.weight_device` (weight 0 removes a rule), else BFQ's own file (which has
    // no removal, so only the new rules are written).
    let (file, removable) = if dir.join("blkio.weight_device").exists() {
        ("blkio.weight_device", true)
    } else if dir.join("blkio.bfq.weight_device").exists() {
        ("blkio.bfq.weight_device", false)
    } else {
        return Ok(out);
    };
    let mut kept = BTreeSet::new();
    for wd in new.blkio_weight_device.iter().flatten() {
        let k = key(&wd.path)?;
        kept.insert(k.clone());
        out.push(w(dir, file, format!("{k} {}", wd.weight)));
    }
    if removable {
        for wd in old.blkio_weight_device.iter().flatten() {
            let k = key(&wd.path)?;
            if !kept.contains(&k) {
                out.push(w(dir, file, format!("{k} 0")));
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::{Path, PathBuf};

    fn dev(path: &str) -> Result<(i64, i64), DeviceError> {
        match path {
            "/dev/a" => Ok((8, 0)),
            "/dev/b" => Ok((8, 16)),
            _ => Err(DeviceError::Gather {
                path: path.into(),
                cause: crate::resources::GatherCause::Missing,
            }),
        }
    }

    fn t(path: &str, rate: u64) -> ThrottleDevice {
        ThrottleDevice {
            path: path.into(),
            rate,
        }
    }

    #[test]
    fn update_bodies_keep_or_clear() {
        let rules: DeviceRules = serde_json::from_str(
            r#"{"BlkioDeviceReadBps": [{"Path": "/dev/a", "Rate": 1024}], "BlkioDeviceWriteIOps": [], "BlkioWeightDevice": null}"#,
        )
        .unwrap();
        assert!(!rules.is_empty());
        let mut hc = HostConfig {
            blkio_device_write_iops: Some(vec![t("/dev/a", 5)]),
            blkio_weight_device: Some(vec![WeightDevice {
                path: "/dev/a".into(),
                weight: 100,
            }]),
            ..Default::default()
        };
        rules.merge_into(&mut hc);
        assert_eq!(hc.blkio_device_read_bps, Some(vec![t("/dev/a", 1024)]));
        assert_eq!(hc.blkio_device_write_iops, Some(vec![]), "[] clears");
        assert_eq!(
            hc.blkio_weight_device.as_ref().unwrap().len(),
            1,
            "null keeps"
        );
        assert!(DeviceRules::default().is_empty());
        let bad = HostConfig {
            blkio_weight_device: Some(vec![WeightDevice {
                path: "/dev/a".into(),
                weight: 5,
            }]),
            ..Default::default()
        };
        assert!(validate(&bad, &dev)
            .unwrap_err()
            .to_string()
            .contains("out of the range"));
        assert!(validate(&hc, &dev).is_ok());
        let missing = HostConfig {
            blkio_device_read_bps: Some(vec![t("/dev/nope", 1)]),
            ..Default::default()
        };
        assert!(validate(&missing, &dev).is_err());
    }

    #[test]
    fn v1_writes_and_resets() {
        let paths = CgroupPaths {
            v1: vec![("blkio".into(), PathBuf::from("/cg/blkio/x"))],
            v2: None,
        };
        let old = HostConfig {
            blkio_device_read_bps: Some(vec![t("/dev/a", 10), t("/dev/b", 20)]),
            ..Default::default()
        };
        let new = HostConfig {
            blkio_device_read_bps: Some(vec![t("/dev/a", 30)]),
            ..Default::default()
        };
        let writes = plan(&old, &new, &paths, &dev).unwrap();
        let file = PathBuf::from("/cg/blkio/x/blkio.throttle.read_bps_device");
        assert_eq!(
            writes,
            vec![
                CgroupWrite {
                    file: file.clone(),
                    value: "8:0 30".into()
                },
                CgroupWrite {
                    file,
                    value: "8:16 0".into()
                },
            ]
        );
        let bad = HostConfig {
            blkio_device_read_bps: Some(vec![t("/dev/nope", 1)]),
            ..Default::default()
        };
        assert!(plan(&old, &bad, &paths, &dev).is_err());
    }

    #[test]
    fn v2_io_max_lines() {
        let paths = CgroupPaths {
            v1: Vec::new(),
            v2: Some(PathBuf::from("/cg/x")),
        };
        let old = HostConfig {
            blkio_device_write_iops: Some(vec![t("/dev/b", 7)]),
            ..Default::default()
        };
        let new = HostConfig {
            blkio_device_read_bps: Some(vec![t("/dev/a", 1024)]),
            blkio_device_write_iops: Some(vec![t("/dev/a", 9)]),
            ..Default::default()
        };
        let writes = plan(&old, &new, &paths, &dev).unwrap();
        let values: Vec<&str> = writes.iter().map(|w| w.value.as_str()).collect();
        assert_eq!(
            values,
            vec![
                "8:0 rbps=1024 wbps=max riops=max wiops=9",
                "8:16 rbps=max wbps=max riops=max wiops=max"
            ]
        );
        assert!(writes.iter().all(|w| w.file == Path::new("/cg/x/io.max")));
    }
}
