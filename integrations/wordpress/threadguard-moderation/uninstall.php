<?php
/**
 * Removes the plugin's settings when it is deleted (comment meta is kept: it is the
 * record of past moderation decisions).
 *
 * @package Threadguard_Moderation
 */

if ( ! defined( 'WP_UNINSTALL_PLUGIN' ) ) {
	exit;
}

delete_option( 'threadguard_moderation_settings' );
