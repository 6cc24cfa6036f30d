terraform {
  # 1.11: write-only attributes, so generated keys reach Key Vault without entering the state.
  required_version = ">= 1.11.0"
  required_providers {
    # 4.77: storage_account_id on tables and queues (ARM, works with shared keys off);
    # 4.69: identity_id on Container Apps scale rules; 4.42: rbac_authorization_enabled.
    azurerm = {
      source  = "hashicorp/azurerm"
      version = "~> 4.77"
    }
    random = {
      source  = "hashicorp/random"
      version = "~> 3.7"
    }
  }
}
