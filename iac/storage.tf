# Tables and queues. Entra ID only: shared keys off, so nothing holds an account key.
resource "azurerm_storage_account" "this" {
  #checkov:skip=CKV_AZURE_43:the name is local.flatname, lowercase letters and digits cut to 24 (checkov cannot evaluate it)
  #checkov:skip=CKV_AZURE_59:public endpoint only without var.network, and then Entra ID only (shared keys are off)
  #checkov:skip=CKV_AZURE_206:zone-redundant (ZRS); geo replication of operational history is left to the user
  #checkov:skip=CKV_AZURE_33:queue logging is set by azurerm_storage_account_queue_properties.this, which checkov does not read
  #checkov:skip=CKV2_AZURE_38:blob soft delete: cloudo keeps no blobs (tables and queues only)
  #checkov:skip=CKV2_AZURE_1:Microsoft-managed keys with infrastructure encryption; a customer key needs a key lifecycle outside this module
  name                     = local.flatname
  resource_group_name      = var.resource_group_name
  location                 = var.location
  account_tier             = "Standard"
  account_replication_type = "ZRS"
  account_kind             = "StorageV2"

  https_traffic_only_enabled        = true
  min_tls_version                   = "TLS1_2"
  allow_nested_items_to_be_public   = false
  shared_access_key_enabled         = false
  default_to_oauth_authentication   = true
  local_user_enabled                = false
  cross_tenant_replication_enabled  = false
  infrastructure_encryption_enabled = true
  public_network_access_enabled     = var.network == null

  dynamic "network_rules" {
    for_each = var.network == null ? [] : [var.network]
    content {
      default_action = "Deny"
      bypass         = ["AzureServices", "Logging", "Metrics"]
    }
  }

  tags = local.tags
}

resource "azurerm_storage_account_queue_properties" "this" {
  storage_account_id = azurerm_storage_account.this.id
  logging {
    delete                = true
    read                  = true
    write                 = true
    version               = "1.0"
    retention_policy_days = 10
  }
}

resource "azurerm_storage_table" "this" {
  #checkov:skip=CKV2_AZURE_20:azurerm has no table service logging setting; send the account's diagnostics where you keep logs
  for_each           = toset(local.tables)
  name               = "${local.azure_prefix}${each.key}"
  storage_account_id = azurerm_storage_account.this.id
}

resource "azurerm_storage_queue" "pool" {
  for_each           = local.pool_queues
  name               = each.value
  storage_account_id = azurerm_storage_account.this.id
}

resource "azurerm_storage_queue" "poison" {
  for_each           = local.poison_queues
  name               = each.value
  storage_account_id = azurerm_storage_account.this.id
}

resource "azurerm_storage_queue" "ping" {
  name               = local.ping_queue
  storage_account_id = azurerm_storage_account.this.id
}

resource "azurerm_private_endpoint" "storage" {
  for_each            = var.network == null ? {} : { queue = var.network.queue_dns_zone_id, table = var.network.table_dns_zone_id }
  name                = "${local.name}-${each.key}-pe"
  location            = var.location
  resource_group_name = var.resource_group_name
  subnet_id           = var.network.endpoints_subnet_id
  private_service_connection {
    name                           = "${local.name}-${each.key}"
    private_connection_resource_id = azurerm_storage_account.this.id
    subresource_names              = [each.key]
    is_manual_connection           = false
  }
  private_dns_zone_group {
    name                 = each.key
    private_dns_zone_ids = [each.value]
  }
  tags = local.tags
}
