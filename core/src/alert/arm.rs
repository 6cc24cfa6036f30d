//! Azure Resource Manager ids: `/subscriptions/{s}/resourceGroups/{rg}/providers/{ns}/{type}/{name}[/{type}/{name}...]`.

/// The parts of an ARM id the runbook variables need.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ArmId {
    pub subscription: String,
    pub resource_group: String,
    /// `Microsoft.Compute/virtualMachines`, `Microsoft.Sql/servers/databases`, ...
    pub kind: String,
    pub name: String,
}

impl ArmId {
    /// Parses an ARM id; `None` unless it starts with `/subscriptions/<id>`. Segment names
    /// are matched case-insensitively, values are kept as written.
    pub fn parse(id: &str) -> Option<Self> {
        let segs: Vec<&str> = id.split('/').filter(|s| !s.is_empty()).collect();
        if segs.len() < 2 || !segs[0].eq_ignore_ascii_case("subscriptions") {
            return None;
        }
        let mut arm = ArmId {
            subscription: segs[1].to_string(),
            ..ArmId::default()
        };
        let mut i = 2;
        if segs.len() >= 4 && segs[2].eq_ignore_ascii_case("resourcegroups") {
            arm.resource_group = segs[3].to_string();
            i = 4;
        }
        if segs.len() > i + 1 && segs[i].eq_ignore_ascii_case("providers") {
            let namespace = segs[i + 1];
            let rest = &segs[i + 2..];
            let types: Vec<&str> = rest.iter().step_by(2).copied().collect();
            if !types.is_empty() {
                arm.kind = format!("{namespace}/{}", types.join("/"));
            }
            if rest.len() >= 2 && rest.len().is_multiple_of(2) {
                arm.name = rest[rest.len() - 1].to_string();
            }
        } else if !arm.resource_group.is_empty() && segs.len() == 4 {
            arm.kind = "Microsoft.Resources/resourceGroups".into();
            arm.name = arm.resource_group.clone();
        } else if segs.len() == 2 {
            arm.kind = "Microsoft.Resources/subscriptions".into();
        }
        Some(arm)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_resources_nested_types_groups_and_subscriptions() {
        let vm = ArmId::parse(
            "/subscriptions/S/resourcegroups/RG-1/providers/microsoft.compute/virtualmachines/VM-1",
        )
        .expect("vm");
        assert_eq!(
            (
                vm.subscription.as_str(),
                vm.resource_group.as_str(),
                vm.kind.as_str(),
                vm.name.as_str()
            ),
            ("S", "RG-1", "microsoft.compute/virtualmachines", "VM-1")
        );
        let db = ArmId::parse(
            "/subscriptions/S/resourceGroups/rg/providers/Microsoft.Sql/servers/s1/databases/db1",
        )
        .expect("db");
        assert_eq!(
            (db.kind.as_str(), db.name.as_str()),
            ("Microsoft.Sql/servers/databases", "db1")
        );
        let rg = ArmId::parse("/subscriptions/S/resourceGroups/rg").expect("rg");
        assert_eq!(
            (rg.kind.as_str(), rg.name.as_str()),
            ("Microsoft.Resources/resourceGroups", "rg")
        );
        let sub = ArmId::parse("/subscriptions/S").expect("sub");
        assert_eq!((sub.subscription.as_str(), sub.name.as_str()), ("S", ""));
        assert!(ArmId::parse("not/an/id").is_none());
        assert!(ArmId::parse("").is_none());
        assert!(ArmId::parse("/subscriptions").is_none());
    }
}
