//! A container's configured networks ([`Membership`]s), in the order it joins them.

use super::*;

impl NetService {
    pub(crate) fn has_memberships(&self, network_id: &str) -> bool {
        lock(&self.state)
            .memberships
            .values()
            .any(|ms| ms.iter().any(|m| m.network_id == network_id))
    }

    /// Every container's memberships.
    pub(crate) fn all_memberships(&self) -> Vec<Membership> {
        lock(&self.state)
            .memberships
            .values()
            .flatten()
            .cloned()
            .collect()
    }

    pub(crate) fn memberships(&self, id: &str) -> Vec<Membership> {
        lock(&self.state)
            .memberships
            .get(id)
            .cloned()
            .unwrap_or_default()
    }

    pub(crate) fn set_memberships(&self, id: &str, ms: Vec<Membership>) {
        let mut st = lock(&self.state);
        if ms.is_empty() {
            st.memberships.remove(id);
        } else {
            st.memberships.insert(id.to_string(), ms);
        }
    }

    pub(crate) fn add_membership(&self, m: Membership) {
        let mut st = lock(&self.state);
        let list = st.memberships.entry(m.container_id.clone()).or_default();
        list.retain(|x| x.key() != m.key());
        list.push(m);
    }

    /// Forgets the membership whose key ([`Membership::key`]) is `key`.
    pub(crate) fn remove_membership(&self, id: &str, key: &str) {
        let mut st = lock(&self.state);
        if let Some(list) = st.memberships.get_mut(id) {
            list.retain(|x| x.key() != key);
        }
    }
}
