# The trigger's action group (attach it to your alert rules), and alerts on cloudo itself
# that notify someone (ClouDO's notified nobody).
resource "azurerm_monitor_action_group" "trigger" {
  name                = "${local.name}-trigger"
  resource_group_name = var.resource_group_name
  short_name          = "cloudo-trig"
  tags                = local.tags

  webhook_receiver {
    name                    = "cloudo"
    use_common_alert_schema = true
    # The schema is chosen by routing rules (no id): the URL carries no schema and, with
    # Entra authentication, no key either. With trigger_auth = "key" it carries the ingest
    # key (role ingest: it can only deliver alerts), never an admin key.
    service_uri = var.trigger_auth == "entra" ? "${local.public_url}/api/Trigger" : "${local.public_url}/api/Trigger?code=${one(random_password.ingest[*].result)}"
    dynamic "aad_auth" {
      for_each = var.trigger_auth == "entra" ? [var.entra_app] : []
      content {
        object_id      = aad_auth.value.object_id
        identifier_uri = aad_auth.value.identifier_uri
        tenant_id      = aad_auth.value.tenant_id
      }
    }
  }
}

resource "azurerm_monitor_action_group" "ops" {
  name                = "${local.name}-ops"
  resource_group_name = var.resource_group_name
  short_name          = "cloudo-ops"
  tags                = local.tags

  dynamic "email_receiver" {
    for_each = var.ops_alert_emails
    content {
      name                    = "ops-${email_receiver.key}"
      email_address           = email_receiver.value
      use_common_alert_schema = true
    }
  }
}

resource "azurerm_monitor_metric_alert" "orchestrator_5xx" {
  name                = "${local.name}-orchestrator-5xx"
  resource_group_name = var.resource_group_name
  scopes              = [azurerm_container_app.orchestrator.id]
  description         = "The cloudo orchestrator answered 5xx (store unavailable, or a bug)."
  severity            = 2
  frequency           = "PT5M"
  window_size         = "PT15M"
  criteria {
    metric_namespace = "Microsoft.App/containerApps"
    metric_name      = "Requests"
    aggregation      = "Total"
    operator         = "GreaterThan"
    threshold        = 5
    dimension {
      name     = "statusCodeCategory"
      operator = "Include"
      values   = ["5xx"]
    }
  }
  action {
    action_group_id = azurerm_monitor_action_group.ops.id
  }
  tags = local.tags
}

resource "azurerm_monitor_metric_alert" "queue_backlog" {
  name                = "${local.name}-queue-backlog"
  resource_group_name = var.resource_group_name
  scopes              = ["${azurerm_storage_account.this.id}/queueServices/default"]
  description         = "Jobs are waiting in cloudo's queues: workers absent, failing to start, or too few."
  severity            = 2
  frequency           = "PT1H"
  window_size         = "PT1H"
  criteria {
    metric_namespace = "Microsoft.Storage/storageAccounts/queueServices"
    metric_name      = "QueueMessageCount"
    aggregation      = "Average"
    operator         = "GreaterThan"
    threshold        = var.queue_backlog_threshold
  }
  action {
    action_group_id = azurerm_monitor_action_group.ops.id
  }
  tags = local.tags
}

# From cloudo's own JSON logs in the environment's workspace.
locals {
  log_alerts = {
    dead-lettered = {
      description = "A job was moved to a poison queue (delivered too often, or unreadable)."
      query       = "ContainerAppConsoleLogs_CL | where ContainerAppName_s startswith '${var.prefix}-${var.env}-cloudo' | where Log_s has 'dead-lettering'"
      severity    = 1
    }
    queue-age = {
      description = "A job waited in its queue past the queue timeout with no worker taking it (a pool nobody serves, or workers failing to start): the execution ended error."
      query       = "ContainerAppConsoleLogs_CL | where ContainerAppName_s == '${local.orchestrator_name}' | where Log_s has 'execution settled' and Log_s has 'not started within'"
      severity    = 2
    }
    workers-absent = {
      description = "Workers vanished mid-run (crashed, evicted, scaled in): their executions were requeued or ended lost."
      query       = "ContainerAppConsoleLogs_CL | where ContainerAppName_s == '${local.orchestrator_name}' | where Log_s has 'requeued after its worker was lost' or (Log_s has 'execution settled' and Log_s has 'lost')"
      severity    = 2
    }
  }
}

resource "azurerm_monitor_scheduled_query_rules_alert_v2" "logs" {
  for_each             = local.log_alerts
  name                 = "${local.name}-${each.key}"
  resource_group_name  = var.resource_group_name
  location             = var.location
  scopes               = [local.log_analytics_workspace_id]
  description          = each.value.description
  severity             = each.value.severity
  evaluation_frequency = "PT15M"
  window_duration      = "PT15M"
  criteria {
    query                   = each.value.query
    time_aggregation_method = "Count"
    operator                = "GreaterThan"
    threshold               = 0
  }
  action {
    action_groups = [azurerm_monitor_action_group.ops.id]
  }
  tags = local.tags
}
