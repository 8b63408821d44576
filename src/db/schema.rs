// @generated automatically by Diesel CLI.

diesel::table! {
    auth_keys (id) {
        id -> Text,
        user_id -> Text,
        primary_key -> Bool,
        hashed_password -> Nullable<Text>,
        expires -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    auth_sessions (id) {
        id -> Text,
        user_id -> Text,
        expires_at -> Timestamptz,
    }
}

diesel::table! {
    auth_throttle (key) {
        key -> Text,
        window_start -> Timestamptz,
        window_ms -> Int8,
        hits -> Int4,
    }
}

diesel::table! {
    deployment_credentials (id) {
        id -> Text,
        team_id -> Text,
        source -> Text,
        auth_type -> Text,
        access_token_encrypted -> Nullable<Text>,
        refresh_token_encrypted -> Nullable<Text>,
        installation_id -> Nullable<Text>,
        account_login -> Nullable<Text>,
        account_id -> Nullable<Text>,
        scopes -> Nullable<Array<Nullable<Text>>>,
        expires_at -> Nullable<Timestamptz>,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    deployment_settings (id) {
        id -> Text,
        server_id -> Text,
        auto_deploy_enabled -> Bool,
        webhook_id -> Nullable<Text>,
        webhook_secret -> Nullable<Text>,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    deploystack_setup (id) {
        id -> Bool,
        database_type -> Text,
        backend_version -> Text,
        completed_at -> Timestamptz,
    }
}

diesel::table! {
    dynamic_oauth_clients (client_id) {
        client_id -> Text,
        client_name -> Text,
        redirect_uris -> Array<Nullable<Text>>,
        grant_types -> Array<Nullable<Text>>,
        response_types -> Array<Nullable<Text>>,
        scope -> Text,
        token_endpoint_auth_method -> Text,
        client_id_issued_at -> Timestamptz,
        expires_at -> Nullable<Timestamptz>,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    email_verification_tokens (id) {
        id -> Text,
        user_id -> Text,
        token_hash -> Text,
        expires_at -> Timestamptz,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    encryption_key_check (id) {
        id -> Int2,
        check_value -> Text,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    first_admin_tokens (token_hash) {
        token_hash -> Text,
        kind -> Text,
        expires_at -> Timestamptz,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    global_setting_groups (id) {
        id -> Text,
        name -> Text,
        description -> Nullable<Text>,
        icon -> Nullable<Text>,
        sort_order -> Int4,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    global_settings (key) {
        key -> Text,
        name -> Nullable<Text>,
        value -> Text,
        #[sql_name = "type"]
        type_ -> Text,
        description -> Nullable<Text>,
        is_encrypted -> Bool,
        group_id -> Nullable<Text>,
        sort_order -> Int4,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    mcp_categories (id) {
        id -> Text,
        name -> Text,
        description -> Nullable<Text>,
        icon -> Nullable<Text>,
        sort_order -> Int4,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    mcp_client_activity (id) {
        id -> Text,
        user_id -> Text,
        team_id -> Text,
        satellite_id -> Text,
        auth_type -> Text,
        oauth_client_id -> Nullable<Text>,
        api_key_id -> Nullable<Text>,
        auth_identifier -> Text,
        client_name -> Nullable<Text>,
        user_agent -> Nullable<Text>,
        ip_address -> Nullable<Text>,
        current_session_id -> Nullable<Text>,
        first_seen_at -> Timestamptz,
        last_activity_at -> Timestamptz,
        total_requests -> Int4,
        total_tool_calls -> Int4,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    mcp_client_activity_metrics (id, bucket_timestamp) {
        id -> Text,
        user_id -> Text,
        team_id -> Text,
        satellite_id -> Text,
        auth_identifier -> Text,
        bucket_timestamp -> Timestamptz,
        bucket_interval -> Text,
        request_count -> Int4,
        tool_call_count -> Int4,
        active_client_count -> Int4,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    mcp_oauth_providers (id) {
        id -> Text,
        name -> Text,
        slug -> Text,
        icon_url -> Nullable<Text>,
        auth_server_patterns -> Array<Nullable<Text>>,
        client_id -> Text,
        client_secret -> Nullable<Text>,
        authorization_endpoint -> Text,
        token_endpoint -> Text,
        default_scopes -> Nullable<Array<Nullable<Text>>>,
        pkce_required -> Bool,
        token_endpoint_auth_method -> Text,
        enabled -> Bool,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    mcp_oauth_tokens (id) {
        id -> Text,
        installation_id -> Text,
        user_id -> Text,
        team_id -> Text,
        access_token -> Text,
        refresh_token -> Nullable<Text>,
        token_type -> Text,
        expires_at -> Nullable<Timestamptz>,
        scope -> Nullable<Text>,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    mcp_request_logs (id, created_at) {
        id -> Text,
        installation_id -> Text,
        team_id -> Text,
        user_id -> Nullable<Text>,
        tool_name -> Text,
        tool_params -> Nullable<Jsonb>,
        tool_response -> Nullable<Jsonb>,
        response_time_ms -> Int4,
        success -> Bool,
        error_message -> Nullable<Text>,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    mcp_server_config_schemas (server_id) {
        server_id -> Text,
        template_args -> Nullable<Jsonb>,
        template_env -> Nullable<Jsonb>,
        template_headers -> Nullable<Jsonb>,
        template_url_query_params -> Nullable<Jsonb>,
        team_args_schema -> Nullable<Jsonb>,
        team_env_schema -> Nullable<Jsonb>,
        team_headers_schema -> Nullable<Jsonb>,
        team_url_query_params_schema -> Nullable<Jsonb>,
        user_args_schema -> Nullable<Jsonb>,
        user_env_schema -> Nullable<Jsonb>,
        user_headers_schema -> Nullable<Jsonb>,
        user_url_query_params_schema -> Nullable<Jsonb>,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    mcp_server_installations (id) {
        id -> Text,
        team_id -> Text,
        server_id -> Text,
        created_by -> Text,
        installation_name -> Text,
        installation_type -> Text,
        team_args -> Nullable<Jsonb>,
        team_env -> Nullable<Jsonb>,
        team_headers -> Nullable<Jsonb>,
        team_url_query_params -> Nullable<Jsonb>,
        oauth_state -> Nullable<Text>,
        oauth_code_verifier -> Nullable<Text>,
        oauth_pending -> Bool,
        oauth_pending_expires_at -> Nullable<Timestamptz>,
        oauth_client_id -> Nullable<Text>,
        oauth_client_secret -> Nullable<Text>,
        oauth_provider_id -> Nullable<Text>,
        oauth_token_endpoint -> Nullable<Text>,
        oauth_token_endpoint_auth_method -> Nullable<Text>,
        settings -> Jsonb,
        satellite_id -> Nullable<Text>,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
        last_used_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    mcp_server_instances (id) {
        id -> Text,
        installation_id -> Text,
        user_id -> Text,
        instance_path -> Nullable<Text>,
        instance_token -> Nullable<Text>,
        status -> Text,
        status_message -> Nullable<Text>,
        status_updated_at -> Nullable<Timestamptz>,
        last_health_check_at -> Nullable<Timestamptz>,
        last_credential_check_at -> Nullable<Timestamptz>,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    mcp_server_logs (id, created_at) {
        id -> Text,
        installation_id -> Text,
        team_id -> Text,
        log_type -> Text,
        log_level -> Text,
        message -> Text,
        metadata -> Nullable<Jsonb>,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    mcp_server_versions (id) {
        id -> Text,
        server_id -> Text,
        version -> Text,
        git_commit -> Nullable<Text>,
        changelog -> Nullable<Text>,
        is_latest -> Bool,
        is_stable -> Bool,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    mcp_servers (id) {
        id -> Text,
        name -> Text,
        official_name -> Nullable<Text>,
        slug -> Text,
        description -> Text,
        long_description -> Nullable<Text>,
        version -> Nullable<Text>,
        repository_url -> Nullable<Text>,
        repository_source -> Nullable<Text>,
        repository_id -> Nullable<Text>,
        repository_subfolder -> Nullable<Text>,
        git_branch -> Nullable<Text>,
        git_commit_sha -> Nullable<Text>,
        website_url -> Nullable<Text>,
        icon_url -> Nullable<Text>,
        language -> Text,
        runtime -> Text,
        github_account_id -> Nullable<Text>,
        github_readme_base64 -> Nullable<Text>,
        github_stars -> Nullable<Int4>,
        packages -> Nullable<Jsonb>,
        remotes -> Nullable<Jsonb>,
        resources -> Nullable<Jsonb>,
        prompts -> Nullable<Jsonb>,
        visibility -> Text,
        owner_team_id -> Nullable<Text>,
        created_by -> Text,
        author_name -> Nullable<Text>,
        author_contact -> Nullable<Text>,
        organization -> Nullable<Text>,
        license -> Nullable<Text>,
        transport_type -> Text,
        dependencies -> Nullable<Jsonb>,
        meta_extensions -> Nullable<Jsonb>,
        category_id -> Nullable<Text>,
        tags -> Array<Nullable<Text>>,
        status -> Text,
        featured -> Bool,
        auto_install_new_default_team -> Bool,
        source -> Text,
        deployment_source -> Nullable<Text>,
        synced_from_official_registry -> Bool,
        official_registry_server_id -> Nullable<Text>,
        official_registry_version_id -> Nullable<Text>,
        official_registry_published_at -> Nullable<Timestamptz>,
        official_registry_updated_at -> Nullable<Timestamptz>,
        requires_oauth -> Bool,
        skip_oauth_flow -> Bool,
        health_status -> Text,
        last_health_check_at -> Nullable<Timestamptz>,
        health_check_error -> Nullable<Text>,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
        last_sync_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    mcp_tool_metadata (id) {
        id -> Text,
        installation_id -> Text,
        team_id -> Text,
        tool_name -> Text,
        description -> Text,
        input_schema -> Nullable<Jsonb>,
        token_count -> Int4,
        is_disabled -> Bool,
        discovered_at -> Timestamptz,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    mcp_user_configurations (id) {
        id -> Text,
        installation_id -> Text,
        user_id -> Text,
        user_args -> Nullable<Jsonb>,
        user_env -> Nullable<Jsonb>,
        user_headers -> Nullable<Jsonb>,
        user_url_query_params -> Nullable<Jsonb>,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
        last_used_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    oauth_access_tokens (id) {
        id -> Text,
        user_id -> Text,
        team_id -> Text,
        client_id -> Text,
        scope -> Text,
        token_hash -> Text,
        created_at -> Timestamptz,
        expires_at -> Timestamptz,
    }
}

diesel::table! {
    oauth_authorization_codes (id) {
        id -> Text,
        user_id -> Text,
        team_id -> Text,
        client_id -> Text,
        redirect_uri -> Text,
        scope -> Text,
        state -> Text,
        code_challenge -> Text,
        code_challenge_method -> Text,
        code -> Text,
        resource -> Nullable<Text>,
        used -> Bool,
        created_at -> Timestamptz,
        expires_at -> Timestamptz,
    }
}

diesel::table! {
    oauth_clients (id) {
        id -> Text,
        client_id -> Text,
        client_secret_hash -> Nullable<Text>,
        client_name -> Text,
        redirect_uris -> Array<Nullable<Text>>,
        scope -> Text,
        team_id -> Nullable<Text>,
        created_by_user_id -> Nullable<Text>,
        is_active -> Bool,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    oauth_pending_flows (id) {
        id -> Text,
        team_id -> Text,
        server_id -> Text,
        created_by -> Text,
        installation_id -> Nullable<Text>,
        oauth_state -> Text,
        oauth_code_verifier -> Text,
        oauth_client_id -> Text,
        oauth_client_secret -> Nullable<Text>,
        oauth_provider_id -> Nullable<Text>,
        oauth_token_endpoint -> Text,
        oauth_token_endpoint_auth_method -> Text,
        satellite_id -> Nullable<Text>,
        installation_name -> Text,
        installation_type -> Text,
        team_config -> Nullable<Jsonb>,
        expires_at -> Timestamptz,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    oauth_refresh_tokens (id) {
        id -> Text,
        user_id -> Text,
        team_id -> Text,
        client_id -> Text,
        scope -> Text,
        token_hash -> Text,
        used -> Bool,
        created_at -> Timestamptz,
        expires_at -> Timestamptz,
    }
}

diesel::table! {
    oauth_team_consents (id) {
        id -> Text,
        user_id -> Text,
        team_id -> Text,
        client_id -> Text,
        scope -> Text,
        granted_at -> Timestamptz,
        last_used_at -> Nullable<Timestamptz>,
        is_active -> Bool,
    }
}

diesel::table! {
    password_reset_tokens (id) {
        id -> Text,
        user_id -> Text,
        token_hash -> Text,
        expires_at -> Timestamptz,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    queue_job_batches (id) {
        id -> Text,
        #[sql_name = "type"]
        type_ -> Text,
        total_jobs -> Int4,
        completed_jobs -> Int4,
        failed_jobs -> Int4,
        status -> Text,
        metadata -> Nullable<Jsonb>,
        created_at -> Timestamptz,
        completed_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    queue_jobs (id) {
        id -> Text,
        #[sql_name = "type"]
        type_ -> Text,
        payload -> Jsonb,
        status -> Text,
        scheduled_for -> Timestamptz,
        attempts -> Int4,
        max_attempts -> Int4,
        error -> Nullable<Text>,
        result -> Nullable<Jsonb>,
        batch_id -> Nullable<Text>,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
        completed_at -> Nullable<Timestamptz>,
        priority -> Int4,
        locked_by -> Nullable<Text>,
        locked_until -> Nullable<Timestamptz>,
        started_at -> Nullable<Timestamptz>,
        key -> Nullable<Text>,
    }
}

diesel::table! {
    roles (id) {
        id -> Text,
        name -> Text,
        description -> Nullable<Text>,
        permissions -> Array<Nullable<Text>>,
        is_system_role -> Bool,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    satellite_commands (id) {
        id -> Text,
        satellite_id -> Text,
        command_type -> Text,
        priority -> Text,
        payload -> Jsonb,
        status -> Text,
        target_team_id -> Nullable<Text>,
        correlation_id -> Nullable<Text>,
        retry_count -> Int4,
        max_retries -> Int4,
        error_message -> Nullable<Text>,
        result -> Nullable<Jsonb>,
        created_by -> Nullable<Text>,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    satellite_heartbeats (id, timestamp) {
        id -> Text,
        satellite_id -> Text,
        status -> Text,
        system_metrics -> Jsonb,
        process_count -> Int4,
        healthy_process_count -> Int4,
        error_count -> Int4,
        response_time_ms -> Nullable<Int4>,
        uptime_seconds -> Nullable<Int4>,
        version -> Nullable<Text>,
        timestamp -> Timestamptz,
    }
}

diesel::table! {
    satellite_processes (id) {
        id -> Text,
        satellite_id -> Text,
        installation_id -> Nullable<Text>,
        server_name -> Text,
        process_pid -> Nullable<Int4>,
        local_port -> Nullable<Int4>,
        status -> Text,
        health_status -> Text,
        performance_metrics -> Nullable<Jsonb>,
        team_id -> Text,
        error_message -> Nullable<Text>,
        started_at -> Nullable<Timestamptz>,
        stopped_at -> Nullable<Timestamptz>,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    satellite_registration_tokens (id) {
        id -> Text,
        token_type -> Text,
        team_id -> Nullable<Text>,
        token_hash -> Text,
        token_prefix -> Text,
        created_by -> Text,
        permissions -> Jsonb,
        used -> Bool,
        used_at -> Nullable<Timestamptz>,
        used_by_satellite_id -> Nullable<Text>,
        expires_at -> Timestamptz,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    satellite_usage_logs (id, timestamp) {
        id -> Text,
        satellite_id -> Text,
        user_id -> Nullable<Text>,
        team_id -> Text,
        process_id -> Nullable<Text>,
        request_method -> Text,
        request_path -> Text,
        tool_name -> Nullable<Text>,
        duration_ms -> Nullable<Int4>,
        status_code -> Nullable<Int4>,
        error_message -> Nullable<Text>,
        request_size_bytes -> Nullable<Int4>,
        response_size_bytes -> Nullable<Int4>,
        user_agent -> Nullable<Text>,
        ip_address -> Nullable<Text>,
        timestamp -> Timestamptz,
        date_partition -> Date,
    }
}

diesel::table! {
    satellites (id) {
        id -> Text,
        name -> Text,
        satellite_type -> Text,
        team_id -> Nullable<Text>,
        status -> Text,
        capabilities -> Jsonb,
        api_key_hash -> Text,
        last_heartbeat -> Nullable<Timestamptz>,
        system_info -> Nullable<Jsonb>,
        satellite_url -> Text,
        region -> Nullable<Text>,
        mcp_status -> Nullable<Jsonb>,
        config -> Nullable<Jsonb>,
        created_by -> Text,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    team_cloud_credentials (id) {
        id -> Text,
        team_id -> Text,
        provider_id -> Text,
        name -> Text,
        comment -> Nullable<Text>,
        credentials -> Text,
        created_by -> Text,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    team_memberships (id) {
        id -> Text,
        team_id -> Text,
        user_id -> Text,
        role -> Text,
        joined_at -> Timestamptz,
    }
}

diesel::table! {
    teams (id) {
        id -> Text,
        name -> Text,
        slug -> Text,
        description -> Nullable<Text>,
        owner_id -> Text,
        is_default -> Bool,
        non_http_mcp_limit -> Int4,
        mcp_server_limit -> Int4,
        member_limit -> Int4,
        allow_remote_mcp -> Bool,
        allow_github_mcp -> Bool,
        allow_private_github_repos -> Bool,
        github_mcp_limit -> Int4,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    user_preferences (id) {
        id -> Text,
        user_id -> Text,
        preference_key -> Text,
        preference_value -> Text,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    users (id) {
        id -> Text,
        username -> Text,
        email -> Text,
        auth_type -> Text,
        first_name -> Nullable<Text>,
        last_name -> Nullable<Text>,
        github_id -> Nullable<Text>,
        hashed_password -> Nullable<Text>,
        role_id -> Nullable<Text>,
        email_verified -> Bool,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
    }
}

diesel::joinable!(auth_keys -> users (user_id));
diesel::joinable!(auth_sessions -> users (user_id));
diesel::joinable!(deployment_credentials -> teams (team_id));
diesel::joinable!(deployment_settings -> mcp_servers (server_id));
diesel::joinable!(email_verification_tokens -> users (user_id));
diesel::joinable!(global_settings -> global_setting_groups (group_id));
diesel::joinable!(mcp_client_activity -> satellites (satellite_id));
diesel::joinable!(mcp_client_activity -> teams (team_id));
diesel::joinable!(mcp_client_activity -> users (user_id));
diesel::joinable!(mcp_client_activity_metrics -> satellites (satellite_id));
diesel::joinable!(mcp_client_activity_metrics -> teams (team_id));
diesel::joinable!(mcp_client_activity_metrics -> users (user_id));
diesel::joinable!(mcp_oauth_tokens -> mcp_server_installations (installation_id));
diesel::joinable!(mcp_oauth_tokens -> teams (team_id));
diesel::joinable!(mcp_oauth_tokens -> users (user_id));
diesel::joinable!(mcp_request_logs -> mcp_server_installations (installation_id));
diesel::joinable!(mcp_request_logs -> teams (team_id));
diesel::joinable!(mcp_request_logs -> users (user_id));
diesel::joinable!(mcp_server_config_schemas -> mcp_servers (server_id));
diesel::joinable!(mcp_server_installations -> mcp_oauth_providers (oauth_provider_id));
diesel::joinable!(mcp_server_installations -> mcp_servers (server_id));
diesel::joinable!(mcp_server_installations -> satellites (satellite_id));
diesel::joinable!(mcp_server_installations -> teams (team_id));
diesel::joinable!(mcp_server_installations -> users (created_by));
diesel::joinable!(mcp_server_instances -> mcp_server_installations (installation_id));
diesel::joinable!(mcp_server_instances -> users (user_id));
diesel::joinable!(mcp_server_logs -> mcp_server_installations (installation_id));
diesel::joinable!(mcp_server_logs -> teams (team_id));
diesel::joinable!(mcp_server_versions -> mcp_servers (server_id));
diesel::joinable!(mcp_servers -> mcp_categories (category_id));
diesel::joinable!(mcp_servers -> teams (owner_team_id));
diesel::joinable!(mcp_servers -> users (created_by));
diesel::joinable!(mcp_tool_metadata -> mcp_server_installations (installation_id));
diesel::joinable!(mcp_tool_metadata -> teams (team_id));
diesel::joinable!(mcp_user_configurations -> mcp_server_installations (installation_id));
diesel::joinable!(mcp_user_configurations -> users (user_id));
diesel::joinable!(oauth_access_tokens -> teams (team_id));
diesel::joinable!(oauth_access_tokens -> users (user_id));
diesel::joinable!(oauth_authorization_codes -> teams (team_id));
diesel::joinable!(oauth_authorization_codes -> users (user_id));
diesel::joinable!(oauth_clients -> teams (team_id));
diesel::joinable!(oauth_clients -> users (created_by_user_id));
diesel::joinable!(oauth_pending_flows -> mcp_oauth_providers (oauth_provider_id));
diesel::joinable!(oauth_pending_flows -> mcp_server_installations (installation_id));
diesel::joinable!(oauth_pending_flows -> mcp_servers (server_id));
diesel::joinable!(oauth_pending_flows -> satellites (satellite_id));
diesel::joinable!(oauth_pending_flows -> teams (team_id));
diesel::joinable!(oauth_pending_flows -> users (created_by));
diesel::joinable!(oauth_refresh_tokens -> teams (team_id));
diesel::joinable!(oauth_refresh_tokens -> users (user_id));
diesel::joinable!(oauth_team_consents -> teams (team_id));
diesel::joinable!(oauth_team_consents -> users (user_id));
diesel::joinable!(password_reset_tokens -> users (user_id));
diesel::joinable!(satellite_commands -> satellites (satellite_id));
diesel::joinable!(satellite_commands -> teams (target_team_id));
diesel::joinable!(satellite_commands -> users (created_by));
diesel::joinable!(satellite_heartbeats -> satellites (satellite_id));
diesel::joinable!(satellite_processes -> mcp_server_installations (installation_id));
diesel::joinable!(satellite_processes -> satellites (satellite_id));
diesel::joinable!(satellite_processes -> teams (team_id));
diesel::joinable!(satellite_registration_tokens -> satellites (used_by_satellite_id));
diesel::joinable!(satellite_registration_tokens -> teams (team_id));
diesel::joinable!(satellite_registration_tokens -> users (created_by));
diesel::joinable!(satellite_usage_logs -> satellite_processes (process_id));
diesel::joinable!(satellite_usage_logs -> satellites (satellite_id));
diesel::joinable!(satellite_usage_logs -> teams (team_id));
diesel::joinable!(satellite_usage_logs -> users (user_id));
diesel::joinable!(satellites -> teams (team_id));
diesel::joinable!(satellites -> users (created_by));
diesel::joinable!(team_cloud_credentials -> teams (team_id));
diesel::joinable!(team_cloud_credentials -> users (created_by));
diesel::joinable!(team_memberships -> teams (team_id));
diesel::joinable!(team_memberships -> users (user_id));
diesel::joinable!(teams -> users (owner_id));
diesel::joinable!(user_preferences -> users (user_id));
diesel::joinable!(users -> roles (role_id));

diesel::allow_tables_to_appear_in_same_query!(
    auth_keys,
    auth_sessions,
    auth_throttle,
    deployment_credentials,
    deployment_settings,
    deploystack_setup,
    dynamic_oauth_clients,
    email_verification_tokens,
    encryption_key_check,
    first_admin_tokens,
    global_setting_groups,
    global_settings,
    mcp_categories,
    mcp_client_activity,
    mcp_client_activity_metrics,
    mcp_oauth_providers,
    mcp_oauth_tokens,
    mcp_request_logs,
    mcp_server_config_schemas,
    mcp_server_installations,
    mcp_server_instances,
    mcp_server_logs,
    mcp_server_versions,
    mcp_servers,
    mcp_tool_metadata,
    mcp_user_configurations,
    oauth_access_tokens,
    oauth_authorization_codes,
    oauth_clients,
    oauth_pending_flows,
    oauth_refresh_tokens,
    oauth_team_consents,
    password_reset_tokens,
    queue_job_batches,
    queue_jobs,
    roles,
    satellite_commands,
    satellite_heartbeats,
    satellite_processes,
    satellite_registration_tokens,
    satellite_usage_logs,
    satellites,
    team_cloud_credentials,
    team_memberships,
    teams,
    user_preferences,
    users,
);
