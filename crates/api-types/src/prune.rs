//! Housekeeping answers: `POST /containers/prune`, `POST /images/prune`, `GET /system/df`.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::{container, image, volume};

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase", default)]
pub struct ContainerPruneResponse {
    pub containers_deleted: Vec<String>,
    pub space_reclaimed: u64,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase", default)]
pub struct ImagePruneResponse {
    pub images_deleted: Vec<image::DeleteItem>,
    pub space_reclaimed: u64,
}

/// `GET /system/df`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase", default)]
pub struct DiskUsage {
    pub layers_size: i64,
    pub images: Vec<image::Summary>,
    pub containers: Vec<container::Summary>,
    pub volumes: Vec<volume::Volume>,
    pub build_cache: Vec<Value>,
}
