//! The schedules document: `{"schedules": [...]}` in JSON or YAML (a file, the API's
//! entries), checked as a whole: valid entries, unique ids.

use serde::{Deserialize, Serialize};

use super::{Schedule, ScheduleEntry};

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScheduleSet {
    #[serde(default)]
    pub schedules: Vec<ScheduleEntry>,
}

impl ScheduleSet {
    /// Parses JSON (if it starts with `{`) or YAML, and checks every entry.
    pub fn parse(text: &str) -> Result<Self, String> {
        let set: Self = if text.trim_start().starts_with('{') {
            let de = &mut serde_json::Deserializer::from_str(text);
            serde_path_to_error::deserialize(de)
                .map_err(|e| format!("at {}: {}", e.path(), e.inner()))?
        } else {
            serde_saphyr::from_str(text).map_err(|e| e.to_string())?
        };
        set.compile()?;
        Ok(set)
    }

    /// The checked schedules; `Err` names the entry and what is wrong.
    pub fn compile(&self) -> Result<Vec<Schedule>, String> {
        let mut out: Vec<Schedule> = Vec::with_capacity(self.schedules.len());
        for (i, e) in self.schedules.iter().enumerate() {
            if out.iter().any(|s| s.entry.id == e.id) {
                return Err(format!("schedule [{i}] {:?}: duplicate id", e.id));
            }
            out.push(
                Schedule::new(e.clone(), false)
                    .map_err(|why| format!("schedule [{i}] {:?}: {why}", e.id))?,
            );
        }
        Ok(out)
    }

    /// Adds or replaces the entry with `e`'s id.
    pub fn upsert(&mut self, e: ScheduleEntry) {
        match self.schedules.iter_mut().find(|s| s.id == e.id) {
            Some(s) => *s = e,
            None => self.schedules.push(e),
        }
    }

    /// Removes the entry `id`; whether there was one.
    pub fn remove(&mut self, id: &str) -> bool {
        let before = self.schedules.len();
        self.schedules.retain(|s| s.id != id);
        self.schedules.len() != before
    }
}
