//! The router against its documentation.

use std::collections::BTreeSet;

/// docs/security.md lists exactly the routes the router has, with their roles: adding a
/// route (which needs a permission to compile) without documenting it fails here.
#[test]
fn every_route_is_documented_with_its_role() {
    let doc = include_str!("../../../docs/security.md");
    let documented: BTreeSet<(String, String, String)> = doc
        .lines()
        .filter_map(|l| {
            let cells: Vec<&str> = l.split('|').map(|c| c.trim().trim_matches('`')).collect();
            (cells.len() >= 5 && cells[2].starts_with('/')).then(|| {
                (
                    cells[1].to_string(),
                    cells[2].to_string(),
                    cells[3].to_string(),
                )
            })
        })
        .collect();
    let actual: BTreeSet<(String, String, String)> = super::route_table()
        .iter()
        .map(|((m, p), perm)| (m.to_string(), p.to_string(), perm.describe().to_string()))
        .collect();
    assert_eq!(
        documented, actual,
        "docs/security.md and the router disagree"
    );
}
