//! The metadata store: one SQLite database (WAL) for containers, images and tags.
//!
//! Records are JSON documents keyed by id; every write is a committed transaction before the
//! caller answers the API request. Blobs and layers live as files (see `berth_image`).

use std::path::Path;
use std::sync::Mutex;

use rusqlite::{params, Connection, OptionalExtension};
use serde::de::DeserializeOwned;
use serde::Serialize;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("metadata database: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// `SQLITE_FULL` even after the reserve was released (see `store_reserve`).
    #[error("metadata database: no space left on device (the write was not made)")]
    Full,
    #[error("metadata record {id}: {source}")]
    Json {
        id: String,
        source: serde_json::Error,
    },
    #[error("metadata database lock poisoned")]
    Poisoned,
}

pub type Result<T> = std::result::Result<T, StoreError>;

/// Every metadata failure is the daemon's own (a 500), the full disk included, as dockerd
/// reports a failed write of its state.
impl crate::errors::Classified for StoreError {
    fn kind(&self) -> berth_api_types::ErrorKind {
        berth_api_types::ErrorKind::Internal
    }
}
crate::errors::into_api_error!(StoreError);

pub struct Store {
    conn: Mutex<Connection>,
    reserve: crate::store_reserve::Reserve,
}

impl Store {
    pub fn open(path: &Path) -> Result<Store> {
        let conn = Connection::open(path)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        // Every statement below is prepared once and kept (about twenty distinct ones).
        conn.set_prepared_statement_cache_capacity(32);
        conn.execute_batch(
            "CREATE TABLE IF NOT EXISTS containers (id TEXT PRIMARY KEY, name TEXT NOT NULL UNIQUE, data TEXT NOT NULL);
             CREATE TABLE IF NOT EXISTS images (id TEXT PRIMARY KEY, data TEXT NOT NULL);
             CREATE TABLE IF NOT EXISTS tags (name TEXT PRIMARY KEY, image_id TEXT NOT NULL REFERENCES images(id) ON DELETE CASCADE, created TEXT NOT NULL);
             CREATE TABLE IF NOT EXISTS networks (id TEXT PRIMARY KEY, name TEXT NOT NULL UNIQUE, data TEXT NOT NULL);
             CREATE TABLE IF NOT EXISTS network_attachments (container_id TEXT NOT NULL, network_id TEXT NOT NULL, data TEXT NOT NULL, PRIMARY KEY (container_id, network_id));
             CREATE TABLE IF NOT EXISTS volumes (name TEXT PRIMARY KEY, data TEXT NOT NULL);",
        )?;
        Ok(Store {
            conn: Mutex::new(conn),
            reserve: crate::store_reserve::Reserve::new(path),
        })
    }

    /// Runs `f` on the connection, allowed to spend the reserve (see [`Self::with_reserve`]):
    /// for removals, which free space, and updates of existing records (an exit).
    fn with<T>(&self, f: impl FnMut(&mut Connection) -> Result<T>) -> Result<T> {
        self.with_reserve(true, f)
    }

    /// Runs `f` on the connection. With `use_reserve`, a write that fails for lack of space
    /// releases a chunk of the reserve and is tried again (a failed statement or transaction
    /// changed nothing, so running it again is safe); without it, or with the reserve spent,
    /// the caller gets [`StoreError::Full`]. New records do not use the reserve: the room it
    /// gives back is for everybody, and a create on a full disk is to fail, not to fill it.
    fn with_reserve<T>(
        &self,
        use_reserve: bool,
        mut f: impl FnMut(&mut Connection) -> Result<T>,
    ) -> Result<T> {
        let mut conn = self.conn.lock().map_err(|_| StoreError::Poisoned)?;
        loop {
            match f(&mut conn) {
                Err(StoreError::Sqlite(e)) if crate::store_reserve::is_disk_full(&e) => {
                    if !use_reserve || !self.reserve.release() {
                        return Err(StoreError::Full);
                    }
                }
                Ok(v) => {
                    self.reserve.replenish();
                    return Ok(v);
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Whether `table` has a row whose `key` column is `value`.
    fn exists(&self, table: &str, key: &str, value: &str) -> Result<bool> {
        let q = format!("SELECT 1 FROM {table} WHERE {key} = ?1");
        self.with_reserve(false, |c| {
            Ok(c.prepare_cached(&q)?
                .query_row(params![value], |_| Ok(()))
                .optional()?
                .is_some())
        })
    }

    fn encode<T: Serialize>(id: &str, v: &T) -> Result<String> {
        serde_json::to_string(v).map_err(|source| StoreError::Json {
            id: id.to_string(),
            source,
        })
    }

    fn decode<T: DeserializeOwned>(id: &str, s: &str) -> Result<T> {
        serde_json::from_str(s).map_err(|source| StoreError::Json {
            id: id.to_string(),
            source,
        })
    }

    pub fn put_container<T: Serialize>(&self, id: &str, name: &str, record: &T) -> Result<()> {
        let data = Self::encode(id, record)?;
        let update = self.exists("containers", "id", id)?;
        self.with_reserve(update, |c| {
            c.prepare_cached(
                "INSERT INTO containers (id, name, data) VALUES (?1, ?2, ?3)
                 ON CONFLICT(id) DO UPDATE SET name = excluded.name, data = excluded.data",
            )?
            .execute(params![id, name, data])?;
            Ok(())
        })
    }

    pub fn delete_container(&self, id: &str) -> Result<()> {
        self.with(|c| {
            c.prepare_cached("DELETE FROM containers WHERE id = ?1")?
                .execute(params![id])?;
            Ok(())
        })
    }

    pub fn containers<T: DeserializeOwned>(&self) -> Result<Vec<T>> {
        self.all("SELECT id, data FROM containers")
    }

    /// Decodes every `(id, data)` row a query returns.
    fn all<T: DeserializeOwned>(&self, query: &str) -> Result<Vec<T>> {
        self.with(|c| {
            let mut stmt = c.prepare_cached(query)?;
            let rows =
                stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?;
            let mut out = Vec::new();
            for row in rows {
                let (id, data) = row?;
                out.push(Self::decode(&id, &data)?);
            }
            Ok(out)
        })
    }

    pub fn put_network<T: Serialize>(&self, id: &str, name: &str, record: &T) -> Result<()> {
        let data = Self::encode(id, record)?;
        self.with_reserve(false, |c| {
            c.prepare_cached(
                "INSERT INTO networks (id, name, data) VALUES (?1, ?2, ?3)
                 ON CONFLICT(id) DO UPDATE SET name = excluded.name, data = excluded.data",
            )?
            .execute(params![id, name, data])?;
            Ok(())
        })
    }

    /// Deletes a network and the attachments that name it.
    pub fn delete_network(&self, id: &str) -> Result<()> {
        self.with(|c| {
            let tx = c.transaction()?;
            tx.prepare_cached("DELETE FROM networks WHERE id = ?1")?
                .execute(params![id])?;
            tx.prepare_cached("DELETE FROM network_attachments WHERE network_id = ?1")?
                .execute(params![id])?;
            tx.commit()?;
            Ok(())
        })
    }

    pub fn networks<T: DeserializeOwned>(&self) -> Result<Vec<T>> {
        self.all("SELECT id, data FROM networks")
    }

    /// A container's membership of a network (aliases, fixed address, ...), under `network_id`
    /// (a network id, or another key for a network known by name only). A new row goes last
    /// in [`attachments`](Self::attachments); an update keeps its place.
    pub fn put_attachment<T: Serialize>(
        &self,
        container_id: &str,
        network_id: &str,
        record: &T,
    ) -> Result<()> {
        let data = Self::encode(container_id, record)?;
        self.with_reserve(false, |c| {
            c.prepare_cached("INSERT INTO network_attachments (container_id, network_id, data) VALUES (?1, ?2, ?3)
                 ON CONFLICT(container_id, network_id) DO UPDATE SET data = excluded.data")?.execute(
                params![container_id, network_id, data],
            )?;
            Ok(())
        })
    }

    pub fn delete_attachment(&self, container_id: &str, network_id: Option<&str>) -> Result<()> {
        self.with(|c| {
            match network_id {
                Some(n) => c.prepare_cached("DELETE FROM network_attachments WHERE container_id = ?1 AND network_id = ?2")?.execute(
                    params![container_id, n],
                )?,
                None => c.prepare_cached("DELETE FROM network_attachments WHERE container_id = ?1")?.execute(
                    params![container_id],
                )?,
            };
            Ok(())
        })
    }

    /// Every membership, in the order they were recorded (a container joins its networks in
    /// that order).
    pub fn attachments<T: DeserializeOwned>(&self) -> Result<Vec<T>> {
        self.all("SELECT container_id, data FROM network_attachments ORDER BY rowid")
    }

    /// The schema version of the records (SQLite's `user_version`, 0 in a new database):
    /// what one-time migrations of old records already ran.
    pub fn user_version(&self) -> Result<i64> {
        self.with(|c| Ok(c.pragma_query_value(None, "user_version", |r| r.get(0))?))
    }

    pub fn set_user_version(&self, v: i64) -> Result<()> {
        self.with(|c| Ok(c.pragma_update(None, "user_version", v)?))
    }

    pub fn put_image<T: Serialize>(&self, id: &str, record: &T) -> Result<()> {
        let data = Self::encode(id, record)?;
        self.with_reserve(false, |c| {
            c.prepare_cached("INSERT INTO images (id, data) VALUES (?1, ?2) ON CONFLICT(id) DO UPDATE SET data = excluded.data")?.execute(
                params![id, data],
            )?;
            Ok(())
        })
    }

    pub fn images<T: DeserializeOwned>(&self) -> Result<Vec<T>> {
        self.all("SELECT id, data FROM images")
    }

    pub fn image<T: DeserializeOwned>(&self, id: &str) -> Result<Option<T>> {
        let data: Option<String> = self.with(|c| {
            Ok(c.prepare_cached("SELECT data FROM images WHERE id = ?1")?
                .query_row(params![id], |r| r.get(0))
                .optional()?)
        })?;
        data.map(|d| Self::decode(id, &d)).transpose()
    }

    /// Deletes an image and (by cascade) its tags.
    pub fn delete_image(&self, id: &str) -> Result<()> {
        self.with(|c| {
            c.prepare_cached("DELETE FROM images WHERE id = ?1")?
                .execute(params![id])?;
            Ok(())
        })
    }

    /// Points `name` at `image_id`; returns the image it pointed at before, if another.
    pub fn set_tag(&self, name: &str, image_id: &str, created: &str) -> Result<Option<String>> {
        self.with_reserve(false, |c| {
            let tx = c.transaction()?;
            let old: Option<String> = tx.prepare_cached("SELECT image_id FROM tags WHERE name = ?1")?.query_row( params![name], |r| r.get(0))
                .optional()?;
            tx.prepare_cached("INSERT INTO tags (name, image_id, created) VALUES (?1, ?2, ?3)
                 ON CONFLICT(name) DO UPDATE SET image_id = excluded.image_id, created = excluded.created")?.execute(
                params![name, image_id, created],
            )?;
            tx.commit()?;
            Ok(old.filter(|o| o != image_id))
        })
    }

    pub fn delete_tag(&self, name: &str) -> Result<bool> {
        self.with(|c| {
            Ok(c.prepare_cached("DELETE FROM tags WHERE name = ?1")?
                .execute(params![name])?
                > 0)
        })
    }

    pub fn tag_target(&self, name: &str) -> Result<Option<String>> {
        self.with(|c| {
            Ok(
                c.prepare_cached("SELECT image_id FROM tags WHERE name = ?1")?
                    .query_row(params![name], |r| r.get(0))
                    .optional()?,
            )
        })
    }

    /// All tags as (name, image id, created), ordered by name.
    pub fn tags(&self) -> Result<Vec<(String, String, String)>> {
        self.with(|c| {
            let mut stmt =
                c.prepare_cached("SELECT name, image_id, created FROM tags ORDER BY name")?;
            let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
            Ok(rows.collect::<std::result::Result<Vec<_>, _>>()?)
        })
    }
}

impl Store {
    pub fn put_volume<T: Serialize>(&self, name: &str, record: &T) -> Result<()> {
        let data = Self::encode(name, record)?;
        self.with_reserve(false, |c| {
            c.prepare_cached("INSERT INTO volumes (name, data) VALUES (?1, ?2) ON CONFLICT(name) DO UPDATE SET data = excluded.data")?.execute(
                params![name, data],
            )?;
            Ok(())
        })
    }

    pub fn volumes<T: DeserializeOwned>(&self) -> Result<Vec<T>> {
        self.all("SELECT name, data FROM volumes")
    }

    pub fn volume<T: DeserializeOwned>(&self, name: &str) -> Result<Option<T>> {
        let data: Option<String> = self.with(|c| {
            Ok(
                c.prepare_cached("SELECT data FROM volumes WHERE name = ?1")?
                    .query_row(params![name], |r| r.get(0))
                    .optional()?,
            )
        })?;
        data.map(|d| Self::decode(name, &d)).transpose()
    }

    pub fn delete_volume(&self, name: &str) -> Result<()> {
        self.with(|c| {
            c.prepare_cached("DELETE FROM volumes WHERE name = ?1")?
                .execute(params![name])?;
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn containers_and_tags_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(&dir.path().join("m.db")).unwrap();
        s.put_container("a", "web", &serde_json::json!({"x": 1}))
            .unwrap();
        assert!(
            s.put_container("b", "web", &serde_json::json!({})).is_err(),
            "names are unique"
        );
        let all: Vec<serde_json::Value> = s.containers().unwrap();
        assert_eq!(all.len(), 1);
        s.put_image("sha256:1", &serde_json::json!({})).unwrap();
        s.put_image("sha256:2", &serde_json::json!({"n": 2}))
            .unwrap();
        let two: Option<serde_json::Value> = s.image("sha256:2").unwrap();
        assert_eq!(two, Some(serde_json::json!({"n": 2})));
        assert!(s.image::<serde_json::Value>("sha256:3").unwrap().is_none());
        assert_eq!(s.set_tag("busybox:latest", "sha256:1", "t").unwrap(), None);
        assert_eq!(
            s.set_tag("busybox:latest", "sha256:2", "t").unwrap(),
            Some("sha256:1".into())
        );
        s.delete_image("sha256:2").unwrap();
        assert_eq!(
            s.tag_target("busybox:latest").unwrap(),
            None,
            "tags cascade"
        );
        drop(s);
        let s = Store::open(&dir.path().join("m.db")).unwrap();
        let all: Vec<serde_json::Value> = s.containers().unwrap();
        assert_eq!(all.len(), 1, "persisted");
    }
}
