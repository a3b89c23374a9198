//! Finding, loading and saving container records, and the per-container operation lock.

use std::sync::Arc;

use berth_api_types::ApiError;

use super::no_such_container;
use crate::model::Container;
use crate::{lock, Daemon, Result};

impl Daemon {
    pub(crate) fn op_lock(&self, id: &str) -> Arc<tokio::sync::Mutex<()>> {
        lock(&self.op_locks)
            .entry(id.to_string())
            .or_default()
            .clone()
    }

    /// Resolves a full id, a name (with or without `/`) or a unique id prefix.
    pub(crate) fn resolve_container(&self, key: &str) -> Result<Container> {
        let map = lock(&self.containers);
        if let Some(c) = map.get(key) {
            return Ok(c.clone());
        }
        let name = key.strip_prefix('/').unwrap_or(key);
        if let Some(c) = map.values().find(|c| c.name == name) {
            return Ok(c.clone());
        }
        if !key.is_empty() && key.chars().all(|c| c.is_ascii_hexdigit()) {
            let matches: Vec<&Container> = map.values().filter(|c| c.id.starts_with(key)).collect();
            match matches.len() {
                1 => return Ok(matches[0].clone()),
                0 => {}
                _ => {
                    return Err(ApiError::invalid(format!(
                        "multiple IDs found with provided prefix: {key}"
                    )))
                }
            }
        }
        Err(no_such_container(key))
    }

    pub(crate) fn get(&self, id: &str) -> Option<Container> {
        lock(&self.containers).get(id).cloned()
    }

    /// Commits a record to the database, then to memory.
    pub(crate) fn save(&self, c: &Container) -> Result<()> {
        self.store.put_container(&c.id, &c.name, c)?;
        lock(&self.containers).insert(c.id.clone(), c.clone());
        Ok(())
    }

    pub(crate) fn update_state(
        &self,
        id: &str,
        f: impl FnOnce(&mut Container),
    ) -> Result<Container> {
        self.try_update_state(id, |c| {
            f(c);
            Ok(())
        })
    }

    /// [`Self::update_state`] for a change that can be refused (a state transition): when `f`
    /// fails, nothing is saved.
    pub(crate) fn try_update_state(
        &self,
        id: &str,
        f: impl FnOnce(&mut Container) -> Result<()>,
    ) -> Result<Container> {
        let mut c = self.get(id).ok_or_else(|| no_such_container(id))?;
        f(&mut c)?;
        self.save(&c)?;
        Ok(c)
    }
}
