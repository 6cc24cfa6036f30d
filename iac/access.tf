# What the pools' runbooks may do (schemas with azure: true / aks: true act as their pool's
# runbooks identity). Nothing at subscription scope unless custom_roles_subscription asks.
resource "azurerm_role_assignment" "aks_user" {
  for_each             = local.pool_clusters
  scope                = each.value.cluster_id
  role_definition_name = "Azure Kubernetes Service Cluster User Role"
  principal_id         = azurerm_user_assigned_identity.runbooks[each.value.pool].principal_id
  principal_type       = "ServicePrincipal"
}

# Azure RBAC for Kubernetes, one namespace at a time (not RBAC Admin, not cluster-wide).
resource "azurerm_role_assignment" "aks_namespace" {
  for_each             = local.pool_namespaces
  scope                = "${each.value.cluster_id}/namespaces/${each.value.namespace}"
  role_definition_name = each.value.role
  principal_id         = azurerm_user_assigned_identity.runbooks[each.value.pool].principal_id
  principal_type       = "ServicePrincipal"
}

resource "azurerm_role_assignment" "aks_custom" {
  for_each = merge([
    for pk, pc in local.pool_clusters : {
      for role in lookup(var.custom_roles_per_aks, pc.key, []) : "${pk}/${role}" => merge(pc, { role = role })
    }
  ]...)
  scope                = each.value.cluster_id
  role_definition_name = each.value.role
  principal_id         = azurerm_user_assigned_identity.runbooks[each.value.pool].principal_id
  principal_type       = "ServicePrincipal"
}

resource "azurerm_role_assignment" "subscription" {
  for_each = merge([
    for pool, _ in var.worker_pools : { for role in var.custom_roles_subscription : "${pool}/${role}" => { pool = pool, role = role } }
  ]...)
  scope                = "/subscriptions/${data.azurerm_client_config.current.subscription_id}"
  role_definition_name = each.value.role
  principal_id         = azurerm_user_assigned_identity.runbooks[each.value.pool].principal_id
  principal_type       = "ServicePrincipal"
}

resource "azurerm_role_assignment" "custom" {
  for_each = merge([
    for i, a in var.custom_role_assignments : a.principal_id != null ? { "${i}" = merge(a, { principal = a.principal_id }) } : {
      for pool, id in azurerm_user_assigned_identity.runbooks : "${i}/${pool}" => merge(a, { principal = id.principal_id })
    }
  ]...)
  scope                = each.value.scope
  role_definition_name = startswith(each.value.role, "/") ? null : each.value.role
  role_definition_id   = startswith(each.value.role, "/") ? each.value.role : null
  principal_id         = each.value.principal
}
