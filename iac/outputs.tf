output "trigger_url" {
  description = "The trigger (ClouDO's URL): `<trigger_url>?id=<schema>` for manual runs with a key."
  value       = "${local.public_url}/api/Trigger"
}

output "console_url" {
  description = "The web console."
  value       = "${local.public_url}/"
}

output "action_group_id" {
  description = "The action group to attach to alert rules (webhook to the trigger, common alert schema)."
  value       = azurerm_monitor_action_group.trigger.id
}

output "ops_action_group_id" {
  description = "The action group of cloudo's own alerts."
  value       = azurerm_monitor_action_group.ops.id
}

output "storage_account_name" {
  description = "Tables and queues (Entra ID only: shared keys are off)."
  value       = azurerm_storage_account.this.name
}

output "key_vault_id" {
  description = "The Key Vault holding the generated keys (cloudo-admin-key, cloudo-ingest-key, cloudo-worker-key-<pool>) and your notification secrets."
  value       = local.key_vault_id
}

output "identities" {
  description = "Client and principal ids of the identities: orchestrator, workers (storage, their keys) and runbooks (what schemas with azure/aks act as by default; the worker apps get it as CLOUDO_RUNBOOK_CLIENT_ID)."
  value = {
    orchestrator = { client_id = azurerm_user_assigned_identity.orchestrator.client_id, principal_id = azurerm_user_assigned_identity.orchestrator.principal_id }
    workers      = { for p, i in azurerm_user_assigned_identity.worker : p => { client_id = i.client_id, principal_id = i.principal_id } }
    runbooks     = { for p, i in azurerm_user_assigned_identity.runbooks : p => { client_id = i.client_id, principal_id = i.principal_id } }
  }
}

output "queues" {
  description = "Each pool's queue and poison queue."
  value       = { for p, q in local.pool_queues : p => { queue = q, poison = local.poison_queues[p] } }
}
