//! `POST /containers/{id}/rename`.

use berth_api_types::ApiError;

use crate::{lock, names, Daemon, Result};

impl Daemon {
    pub async fn container_rename(&self, key: &str, new_name: &str) -> Result<()> {
        let c = self.resolve_container(key)?;
        // dockerd reserves "/<name>" and wraps what goes wrong in "Error when allocating new
        // name: …", the name in the message with its slash.
        let allocating = |m: String| format!("Error when allocating new name: {m}");
        let n = names::validate(new_name).map_err(|_| {
            ApiError::invalid(allocating(format!(
                "Invalid container name (/{new_name}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"
            )))
        })?;
        if n == c.name {
            return Err(ApiError::conflict(
                "Renaming a container with the same name as its current name",
            ));
        }
        if let Some(other) = lock(&self.containers).values().find(|o| o.name == n) {
            return Err(ApiError::conflict(allocating(format!(
                "Conflict. The container name \"/{n}\" is already in use by container \"{}\". You have to remove (or rename) that container to be able to reuse that name.",
                other.id
            ))));
        }
        let renamed = self.update_state(&c.id, |c| c.name = n)?;
        self.emit_container(&renamed, "rename", &[("oldName", format!("/{}", c.name))]);
        Ok(())
    }
}
