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

/// An AKS cluster's resource id, checked part by part: the subscription a GUID, the group
/// and the name of characters Azure allows in them (so no `..`, `?`, `#`, `%` or `\\`). Its
/// [`path`](Self::path) is rebuilt from the parts, never copied from the input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterId {
    pub subscription: String,
    pub resource_group: String,
    pub name: String,
}

impl ClusterId {
    pub fn new(subscription: &str, resource_group: &str, name: &str) -> Option<Self> {
        (is_guid(subscription) && is_group(resource_group) && is_cluster_name(name)).then(|| Self {
            subscription: subscription.to_string(),
            resource_group: resource_group.to_string(),
            name: name.to_string(),
        })
    }

    /// The cluster `id` is or is inside of:
    /// `/subscriptions/<guid>/resourceGroups/<rg>/providers/Microsoft.ContainerService/managedClusters/<name>[/...]`.
    pub fn within(id: &str) -> Option<Self> {
        let segs: Vec<&str> = id.trim().strip_prefix('/')?.split('/').collect();
        let fixed = [
            (0, "subscriptions"),
            (2, "resourceGroups"),
            (4, "providers"),
            (5, "Microsoft.ContainerService"),
            (6, "managedClusters"),
        ];
        if segs.len() < 8 || !fixed.iter().all(|&(i, w)| segs[i].eq_ignore_ascii_case(w)) {
            return None;
        }
        Self::new(segs[1], segs[3], segs[7])
    }

    /// The cluster an alert names: a `managedClusters` id in `RESOURCE_ID` (the cluster or
    /// something in it), else `AKS_CLUSTER` in `RESOURCE_RG` and `RESOURCE_ID`'s subscription.
    pub fn of_alert(env: &std::collections::BTreeMap<String, String>) -> Option<Self> {
        let get = |k: &str| env.get(k).map(|v| v.trim()).filter(|v| !v.is_empty());
        let id = get("RESOURCE_ID");
        if let Some(c) = id.and_then(Self::within) {
            return Some(c);
        }
        let sub = ArmId::parse(id?)?.subscription;
        Self::new(&sub, get("RESOURCE_RG")?, get("AKS_CLUSTER")?)
    }

    /// `/subscriptions/.../managedClusters/<name>`, from the checked parts.
    pub fn path(&self) -> String {
        format!(
            "/subscriptions/{}/resourceGroups/{}/providers/Microsoft.ContainerService/managedClusters/{}",
            self.subscription, self.resource_group, self.name
        )
    }
}

impl std::fmt::Display for ClusterId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.path())
    }
}

/// 8-4-4-4-12 hexadecimal digits.
pub fn is_guid(s: &str) -> bool {
    let parts: Vec<&str> = s.split('-').collect();
    parts.len() == 5
        && parts
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(p, n)| p.len() == n && p.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// A resource group name: 1-90 letters, digits, `_`, `-`, `.`, `(`, `)`, not ending in `.`.
fn is_group(s: &str) -> bool {
    (1..=90).contains(&s.len())
        && !s.ends_with('.')
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_-.()".contains(&b))
}

/// An AKS cluster name: 1-63 letters, digits, `_` and `-`.
fn is_cluster_name(s: &str) -> bool {
    (1..=63).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

#[cfg(test)]
mod tests {
    use super::*;

    const SUB: &str = "00000000-1111-2222-3333-444444444444";

    #[test]
    fn cluster_ids_are_checked_part_by_part_and_rebuilt() {
        let base = format!(
            "/subscriptions/{SUB}/resourceGroups/rg-1/providers/Microsoft.ContainerService/managedClusters/aks-prod"
        );
        let c = ClusterId::within(&format!("{base}/agentPools/np1")).expect("in a cluster");
        assert_eq!(c.path(), base);
        assert_eq!(c.name, "aks-prod");
        let lower = base.to_ascii_lowercase();
        assert_eq!(
            ClusterId::within(&lower).map(|c| c.name),
            Some("aks-prod".into())
        );
        for hostile in [
            // Another resource, with a cluster id in its query.
            format!("/subscriptions/{SUB}/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/vm1/deallocate?x=/providers/microsoft.containerservice/managedclusters/c"),
            format!("/subscriptions/{SUB}/resourceGroups/../providers/Microsoft.ContainerService/managedClusters/c"),
            format!("/subscriptions/{SUB}/resourceGroups/rg/providers/Microsoft.ContainerService/managedClusters/c?api-version=1"),
            format!("/subscriptions/{SUB}/resourceGroups/rg%2F..%2Fx/providers/Microsoft.ContainerService/managedClusters/c"),
            format!("/subscriptions/{SUB}/resourceGroups/rg/providers/Microsoft.ContainerService/managedClusters/c#x"),
            format!("/subscriptions/{SUB}/resourceGroups/rg/providers/Microsoft.ContainerService/managedClusters/.."),
            "/subscriptions/not-a-guid/resourceGroups/rg/providers/Microsoft.ContainerService/managedClusters/c".into(),
            format!("/x/subscriptions/{SUB}/resourceGroups/rg/providers/Microsoft.ContainerService/managedClusters/c"),
        ] {
            assert_eq!(ClusterId::within(&hostile), None, "{hostile}");
        }
    }

    #[test]
    fn an_alerts_cluster_is_its_resource_else_its_aks_cluster_in_its_group() {
        let env = |pairs: &[(&str, &str)]| {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect::<std::collections::BTreeMap<_, _>>()
        };
        let vm = format!(
            "/subscriptions/{SUB}/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/vm1"
        );
        let named = env(&[
            ("RESOURCE_ID", &vm),
            ("RESOURCE_RG", "rg"),
            ("AKS_CLUSTER", "aks-dev"),
        ]);
        assert_eq!(
            ClusterId::of_alert(&named).map(|c| c.name),
            Some("aks-dev".into())
        );
        let hostile = env(&[
            ("RESOURCE_ID", &vm),
            ("RESOURCE_RG", "rg/../x"),
            ("AKS_CLUSTER", "aks"),
        ]);
        assert_eq!(ClusterId::of_alert(&hostile), None);
        assert_eq!(ClusterId::of_alert(&env(&[("AKS_CLUSTER", "aks")])), None);
    }

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
