variable "prefix" {
  description = "Short name prefixed to every resource (2-10 lowercase letters and digits; ClouDO's `prefix`)."
  type        = string
  validation {
    condition     = can(regex("^[a-z][a-z0-9]{1,9}$", var.prefix))
    error_message = "prefix: 2-10 lowercase letters and digits, starting with a letter."
  }
}

variable "env" {
  description = "Environment name (dev, uat, prod), in resource names and tags."
  type        = string
  validation {
    condition     = can(regex("^[a-z][a-z0-9]{0,7}$", var.env))
    error_message = "env: 1-8 lowercase letters and digits."
  }
}

variable "location" {
  description = "Azure region of every resource."
  type        = string
}

variable "resource_group_name" {
  description = "Existing resource group that receives every resource."
  type        = string
}

variable "tags" {
  description = "Tags on every resource."
  type        = map(string)
  default     = {}
}

variable "orchestrator_image" {
  description = "The orchestrator image (make images: cloudo-orchestrator). Registry credentials: the app's identity (AcrPull) when registry_password_secret_id is null, else username and a Key Vault secret id."
  type = object({
    image_name                  = string
    image_tag                   = string
    registry_url                = string
    registry_username           = optional(string)
    registry_password_secret_id = optional(string)
  })
  validation {
    condition     = (var.orchestrator_image.registry_username == null) == (var.orchestrator_image.registry_password_secret_id == null)
    error_message = "orchestrator_image: set both registry_username and registry_password_secret_id, or neither (identity)."
  }
}

variable "worker_image" {
  description = "The worker image (make images: cloudo-worker, with bash, python3, az, kubectl), same shape as orchestrator_image."
  type = object({
    image_name                  = string
    image_tag                   = string
    registry_url                = string
    registry_username           = optional(string)
    registry_password_secret_id = optional(string)
  })
  validation {
    condition     = (var.worker_image.registry_username == null) == (var.worker_image.registry_password_secret_id == null)
    error_message = "worker_image: set both registry_username and registry_password_secret_id, or neither (identity)."
  }
}

variable "worker_pools" {
  description = "One Container App per pool (a schema's `worker` names its pool). Workers scale on their queue's length, to zero when min_replicas is 0."
  type = map(object({
    min_replicas = optional(number, 0)
    max_replicas = optional(number, 5)
    queue_length = optional(number, 5)
    concurrency  = optional(number, 4)
    cpu          = optional(number, 0.5)
    memory       = optional(string, "1Gi")
  }))
  default = { default = {} }
  validation {
    condition     = alltrue([for k, p in var.worker_pools : can(regex("^[a-z][a-z0-9-]{0,30}$", k)) && p.min_replicas >= 0 && p.max_replicas >= max(1, p.min_replicas)])
    error_message = "worker_pools: keys of lowercase letters, digits and dashes (at most 31); 0 <= min_replicas <= max_replicas, max_replicas >= 1."
  }
}

variable "schemas" {
  description = "The catalog in ClouDO's format (`schemas = file(\"schemas.json\")`)."
  type        = string
  validation {
    condition     = can(jsondecode(var.schemas))
    error_message = "schemas: must be JSON (ClouDO's catalog format)."
  }
}

variable "routing_rules" {
  description = "Alert routing rules (docs/alerts.md), YAML or JSON; null: none."
  type        = string
  default     = null
}

variable "notification_routes" {
  description = "Notification routes (docs/notifications.md), YAML or JSON; null: the default channels only."
  type        = string
  default     = null
}

variable "schedules" {
  description = "Schedules (docs/runbooks.md), YAML or JSON; null: none."
  type        = string
  default     = null
}

variable "runbooks_git" {
  description = "The runbooks repository (ClouDO's github_repo_info): URL, branch, folder, and the Key Vault secret id of a read token for private repositories."
  type = object({
    repo_url        = string
    branch          = optional(string, "main")
    path            = optional(string, "runbooks")
    token_secret_id = optional(string)
  })
  validation {
    condition     = startswith(var.runbooks_git.repo_url, "https://") && !can(regex("@", var.runbooks_git.repo_url))
    error_message = "runbooks_git.repo_url: an https URL without credentials in it (use token_secret_id)."
  }
}

variable "key_vault" {
  description = "Key Vault for the generated keys and the notification secrets: created by the module (id = null), or an existing vault with RBAC authorisation."
  type = object({
    id                         = optional(string)
    purge_protection_enabled   = optional(bool, true)
    soft_delete_retention_days = optional(number, 30)
  })
  default = {}
}

variable "secret_ids" {
  description = "Key Vault secret ids (versionless) of the secrets the apps read, never their values: opsgenie_api_key, slack_token, slack_signing_secret, slack_webhook_url, oidc_client_secret."
  type = object({
    opsgenie_api_key     = optional(string)
    slack_token          = optional(string)
    slack_signing_secret = optional(string)
    slack_webhook_url    = optional(string)
    oidc_client_secret   = optional(string)
  })
  default = {}
}

variable "secrets_version" {
  description = "Bump to generate new admin, ingest and worker keys (write-only: Terraform never stores them)."
  type        = number
  default     = 1
}

variable "slack_channel" {
  description = "Default Slack channel for notifications."
  type        = string
  default     = null
}

variable "trigger_auth" {
  description = "How the action group calls the trigger: `entra` (secure webhook with an Entra ID token, default; set entra_app) or `key` (the ingest key in the URL, kept in the state)."
  type        = string
  default     = "entra"
  validation {
    condition     = contains(["entra", "key"], var.trigger_auth)
    error_message = "trigger_auth: entra or key."
  }
}

variable "entra_app" {
  description = "For trigger_auth = entra: the app registration the action group authenticates to (object id of its service principal, its Application ID URI) and the tenant."
  type = object({
    object_id      = string
    identifier_uri = string
    tenant_id      = string
  })
  default = null
  validation {
    condition     = var.trigger_auth != "entra" || var.entra_app != null
    error_message = "entra_app: required with trigger_auth = \"entra\" (the default); or set trigger_auth = \"key\"."
  }
}

variable "ops_alert_emails" {
  description = "Who is told when cloudo itself is unwell (orchestrator 5xx, queue backlog and age, dead-lettered jobs, workers absent): e-mail addresses."
  type        = list(string)
  validation {
    condition     = length(var.ops_alert_emails) > 0
    error_message = "ops_alert_emails: at least one address (ClouDO's alerts notified nobody)."
  }
}

variable "queue_backlog_threshold" {
  description = "Messages waiting in the account's queues (average over an hour) that raise the backlog alert."
  type        = number
  default     = 500
}

variable "log_analytics_workspace_id" {
  description = "Existing Log Analytics workspace for the apps' logs and the log alerts; null: one is created."
  type        = string
  default     = null
}

variable "network" {
  description = "Private networking: the Container Apps environment's subnet (/21 or larger), and a subnet with private DNS zones for private endpoints of storage and Key Vault. null: public endpoints with Entra ID authentication only."
  type = object({
    apps_subnet_id            = string
    endpoints_subnet_id       = string
    queue_dns_zone_id         = string
    table_dns_zone_id         = string
    vault_dns_zone_id         = string
    internal_load_balancer    = optional(bool, false)
    allowed_client_cidrs      = optional(list(string), [])
  })
  default = null
}

variable "aks_integration" {
  description = "Clusters runbooks act on (ClouDO's aks_integration). Each pool's runbook identity gets the Cluster User role on the cluster (to fetch its kubeconfig) and `role` on each namespace listed: namespace-scoped Azure RBAC for Kubernetes, never cluster admin by default. pools = null: every pool."
  type = map(object({
    cluster_id = string
    namespaces = list(string)
    role       = optional(string, "Azure Kubernetes Service RBAC Writer")
    pools      = optional(list(string))
  }))
  default = {}
  validation {
    condition     = alltrue([for k, a in var.aks_integration : can(regex("(?i)^/subscriptions/[^/]+/resourceGroups/[^/]+/providers/Microsoft.ContainerService/managedClusters/[^/]+$", a.cluster_id))])
    error_message = "aks_integration: cluster_id must be a managedClusters resource id."
  }
}

variable "custom_roles_subscription" {
  description = "Role names given to every pool's runbook identity at the subscription scope (ClouDO's custom_roles_subscription). Broad: prefer custom_role_assignments with a narrow scope."
  type        = list(string)
  default     = []
}

variable "custom_roles_per_aks" {
  description = "Extra role names per aks_integration key, at that cluster's scope (ClouDO's custom_roles_per_aks)."
  type        = map(list(string))
  default     = {}
}

variable "custom_role_assignments" {
  description = "Any other assignment (ClouDO's custom_role_assignments): a role name or definition id, a scope, and a principal (default: every pool's runbook identity)."
  type = list(object({
    role         = string
    scope        = string
    principal_id = optional(string)
  }))
  default = []
}

variable "container_registry_id" {
  description = "Azure Container Registry the images come from: the apps' identities get AcrPull on it (with no registry password). null: grant it yourself, or use registry passwords."
  type        = string
  default     = null
}
