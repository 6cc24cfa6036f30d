# Every secret the apps read lives here and reaches them as a Key Vault reference: never in
# app settings, outputs or (for the generated keys, written write-only) the state.
resource "azurerm_key_vault" "this" {
  count                         = var.key_vault.id == null ? 1 : 0
  name                          = substr("${var.prefix}${var.env}cloudo${random_string.suffix.result}", 0, 24)
  location                      = var.location
  resource_group_name           = var.resource_group_name
  tenant_id                     = data.azurerm_client_config.current.tenant_id
  sku_name                      = "standard"
  rbac_authorization_enabled    = true
  purge_protection_enabled      = var.key_vault.purge_protection_enabled
  soft_delete_retention_days    = var.key_vault.soft_delete_retention_days
  public_network_access_enabled = var.network == null

  network_acls {
    bypass         = "AzureServices"
    default_action = var.network == null ? "Allow" : "Deny"
  }

  tags = local.tags
}

locals {
  key_vault_id = coalesce(var.key_vault.id, try(azurerm_key_vault.this[0].id, null))
  # A versionless secret id (https://<vault>.vault.azure.net/secrets/<name>) as an ARM scope.
  secret_scope = { for k, id in var.secret_ids : k => "${local.key_vault_id}/secrets/${basename(id)}" if id != null }
}

# Whoever runs Terraform writes the generated keys.
resource "azurerm_role_assignment" "deployer_secrets" {
  scope                = local.key_vault_id
  role_definition_name = "Key Vault Secrets Officer"
  principal_id         = data.azurerm_client_config.current.object_id
}

resource "azurerm_private_endpoint" "vault" {
  count               = var.network == null ? 0 : 1
  name                = "${local.name}-vault-pe"
  location            = var.location
  resource_group_name = var.resource_group_name
  subnet_id           = var.network.endpoints_subnet_id
  private_service_connection {
    name                           = "${local.name}-vault"
    private_connection_resource_id = local.key_vault_id
    subresource_names              = ["vault"]
    is_manual_connection           = false
  }
  private_dns_zone_group {
    name                 = "vault"
    private_dns_zone_ids = [var.network.vault_dns_zone_id]
  }
  tags = local.tags
}

# Generated keys: ephemeral values written write-only (Terraform keeps only the version).
ephemeral "random_password" "admin" {
  length  = 48
  special = false
}

ephemeral "random_password" "worker" {
  for_each = var.worker_pools
  length   = 48
  special  = false
}

# With trigger_auth = "key" the ingest key is part of the action group's URL, so it is an
# ordinary (state-kept, sensitive) value; with "entra" nobody needs to see it.
resource "random_password" "ingest" {
  count   = var.trigger_auth == "key" ? 1 : 0
  length  = 48
  special = false
}

ephemeral "random_password" "ingest" {
  count   = var.trigger_auth == "key" ? 0 : 1
  length  = 48
  special = false
}

resource "azurerm_key_vault_secret" "admin" {
  #checkov:skip=CKV_AZURE_41:cloudo keys are rotated by bumping secrets_version; an expiry would stop the apps without warning
  name             = "cloudo-admin-key"
  key_vault_id     = local.key_vault_id
  value_wo         = ephemeral.random_password.admin.result
  value_wo_version = var.secrets_version
  content_type     = "cloudo API key, role admin"
  depends_on       = [azurerm_role_assignment.deployer_secrets]
}

resource "azurerm_key_vault_secret" "worker" {
  #checkov:skip=CKV_AZURE_41:cloudo keys are rotated by bumping secrets_version; an expiry would stop the apps without warning
  for_each         = var.worker_pools
  name             = "cloudo-worker-key-${each.key}"
  key_vault_id     = local.key_vault_id
  value_wo         = ephemeral.random_password.worker[each.key].result
  value_wo_version = var.secrets_version
  content_type     = "cloudo API key, role worker, pool ${each.key}"
  depends_on       = [azurerm_role_assignment.deployer_secrets]
}

resource "azurerm_key_vault_secret" "ingest" {
  #checkov:skip=CKV_AZURE_41:cloudo keys are rotated by bumping secrets_version; an expiry would stop the apps without warning
  name             = "cloudo-ingest-key"
  key_vault_id     = local.key_vault_id
  value_wo         = var.trigger_auth == "key" ? one(random_password.ingest[*].result) : one(ephemeral.random_password.ingest[*].result)
  value_wo_version = var.secrets_version
  content_type     = "cloudo API key, role ingest"
  depends_on       = [azurerm_role_assignment.deployer_secrets]
}
