# cloudo on Azure: one storage account (tables and queues, Entra ID only), a Container Apps
# environment with the orchestrator and one app per worker pool, a Key Vault for every
# secret, managed identities with data-plane roles on that account only, the trigger's
# action group and alerts on cloudo itself. See README.md.

data "azurerm_client_config" "current" {}

data "azurerm_resource_group" "this" {
  name = var.resource_group_name
}

resource "random_string" "suffix" {
  length  = 5
  upper   = false
  special = false
}

locals {
  name     = "${var.prefix}-${var.env}-cloudo"
  flatname = substr("${var.prefix}${var.env}cloudo${random_string.suffix.result}", 0, 24)
  tags     = merge(var.tags, { application = "cloudo", env = var.env })

  # The names cloudo's Azure backend uses (docs/azure.md, --azure-prefix cloudo).
  azure_prefix = "cloudo"
  tables = ["executions", "execstatus", "chunks", "dedup", "keys", "audit", "settings",
  "workers", "leases", "notifications", "outbox", "logs"]
  pool_queues   = { for pool, _ in var.worker_pools : pool => "${local.azure_prefix}-${pool}" }
  poison_queues = { for pool, q in local.pool_queues : pool => "${q}-poison" }
  # The readiness check's queue (exists is all it asks).
  ping_queue = "${local.azure_prefix}-ping"

  # Pool x cluster pairs for runbook access.
  pool_clusters = merge([
    for key, aks in var.aks_integration : {
      for pool, _ in var.worker_pools : "${pool}/${key}" => merge(aks, { pool = pool, key = key })
      if aks.pools == null || contains(coalesce(aks.pools, []), pool)
    }
  ]...)
  pool_namespaces = merge([
    for pk, pc in local.pool_clusters : {
      for ns in pc.namespaces : "${pk}/${ns}" => merge(pc, { namespace = ns })
    }
  ]...)

  log_analytics_workspace_id = coalesce(var.log_analytics_workspace_id, try(azurerm_log_analytics_workspace.this[0].id, null))
}

resource "azurerm_log_analytics_workspace" "this" {
  count               = var.log_analytics_workspace_id == null ? 1 : 0
  name                = "${local.name}-logs"
  location            = var.location
  resource_group_name = var.resource_group_name
  sku                 = "PerGB2018"
  retention_in_days   = 30
  tags                = local.tags
}
