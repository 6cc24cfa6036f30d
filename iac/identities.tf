# One user-assigned identity per component, each with data-plane roles on this storage
# account (or one of its queues) only, and Key Vault roles on the secrets it reads.
resource "azurerm_user_assigned_identity" "orchestrator" {
  name                = "${local.name}-orchestrator"
  location            = var.location
  resource_group_name = var.resource_group_name
  tags                = local.tags
}

# The worker apps' own identity: their queue, their key.
resource "azurerm_user_assigned_identity" "worker" {
  for_each            = var.worker_pools
  name                = "${local.name}-worker-${each.key}"
  location            = var.location
  resource_group_name = var.resource_group_name
  tags                = local.tags
}

# What the pool's runbooks act as (schemas with azure: true / aks: true): a separate identity,
# so runbook roles never mix with the worker's storage access.
resource "azurerm_user_assigned_identity" "runbooks" {
  for_each            = var.worker_pools
  name                = "${local.name}-runbooks-${each.key}"
  location            = var.location
  resource_group_name = var.resource_group_name
  tags                = local.tags
}

resource "azurerm_role_assignment" "orchestrator_tables" {
  scope                = azurerm_storage_account.this.id
  role_definition_name = "Storage Table Data Contributor"
  principal_id         = azurerm_user_assigned_identity.orchestrator.principal_id
  principal_type       = "ServicePrincipal"
}

resource "azurerm_role_assignment" "orchestrator_queues" {
  scope                = azurerm_storage_account.this.id
  role_definition_name = "Storage Queue Data Contributor"
  principal_id         = azurerm_user_assigned_identity.orchestrator.principal_id
  principal_type       = "ServicePrincipal"
}

resource "azurerm_role_assignment" "orchestrator_secrets" {
  for_each = merge(
    { admin = azurerm_key_vault_secret.admin.resource_versionless_id, ingest = azurerm_key_vault_secret.ingest.resource_versionless_id },
    { for p, s in azurerm_key_vault_secret.worker : "worker-${p}" => s.resource_versionless_id },
    local.secret_scope,
  )
  scope                = each.value
  role_definition_name = "Key Vault Secrets User"
  principal_id         = azurerm_user_assigned_identity.orchestrator.principal_id
  principal_type       = "ServicePrincipal"
}

resource "azurerm_role_assignment" "worker_queue" {
  for_each             = merge({ for p, q in azurerm_storage_queue.pool : "${p}/jobs" => { pool = p, id = q.resource_manager_id } }, { for p, q in azurerm_storage_queue.poison : "${p}/poison" => { pool = p, id = q.resource_manager_id } })
  scope                = each.value.id
  role_definition_name = "Storage Queue Data Contributor"
  principal_id         = azurerm_user_assigned_identity.worker[each.value.pool].principal_id
  principal_type       = "ServicePrincipal"
}

resource "azurerm_role_assignment" "worker_ping" {
  for_each             = var.worker_pools
  scope                = azurerm_storage_queue.ping.resource_manager_id
  role_definition_name = "Storage Queue Data Reader"
  principal_id         = azurerm_user_assigned_identity.worker[each.key].principal_id
  principal_type       = "ServicePrincipal"
}

resource "azurerm_role_assignment" "worker_key" {
  for_each             = var.worker_pools
  scope                = azurerm_key_vault_secret.worker[each.key].resource_versionless_id
  role_definition_name = "Key Vault Secrets User"
  principal_id         = azurerm_user_assigned_identity.worker[each.key].principal_id
  principal_type       = "ServicePrincipal"
}

resource "azurerm_role_assignment" "worker_git_token" {
  for_each             = var.runbooks_git.token_secret_id == null ? {} : var.worker_pools
  scope                = "${local.key_vault_id}/secrets/${basename(var.runbooks_git.token_secret_id)}"
  role_definition_name = "Key Vault Secrets User"
  principal_id         = azurerm_user_assigned_identity.worker[each.key].principal_id
  principal_type       = "ServicePrincipal"
}

# Pulling images with the apps' identities (when no registry password is given).
resource "azurerm_role_assignment" "acr_pull" {
  for_each = var.container_registry_id == null ? {} : merge(
    { orchestrator = azurerm_user_assigned_identity.orchestrator.principal_id },
    { for p, i in azurerm_user_assigned_identity.worker : "worker-${p}" => i.principal_id },
  )
  scope                = var.container_registry_id
  role_definition_name = "AcrPull"
  principal_id         = each.value
  principal_type       = "ServicePrincipal"
}
