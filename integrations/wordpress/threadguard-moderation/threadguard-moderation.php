<?php
/**
 * Plugin Name:       Threadguard Moderation
 * Plugin URI:        https://github.com/threadguard/threadguard
 * Description:       Sends each new comment to a threadguard moderation hook (<code>threadguard serve</code>) and publishes, holds or refuses it as the hook decides, keeping the scores and reasons with the comment. Fails into the moderation queue when the hook is down or slow.
 * Version:           0.2.0
 * Requires at least: 5.6
 * Requires PHP:      7.4
 * Author:            threadguard
 * License:           Apache-2.0
 * License URI:       https://www.apache.org/licenses/LICENSE-2.0
 * Text Domain:       threadguard-moderation
 *
 * @package Threadguard_Moderation
 */

// Make sure we don't expose any info if called directly.
if ( ! defined( 'ABSPATH' ) ) {
	exit;
}

define( 'THREADGUARD_MODERATION_VERSION', '0.2.0' );
define( 'THREADGUARD_MODERATION_PLUGIN_DIR', plugin_dir_path( __FILE__ ) );

require_once THREADGUARD_MODERATION_PLUGIN_DIR . 'includes/class-threadguard-moderation.php';

add_action( 'init', array( 'Threadguard_Moderation', 'init' ) );

if ( is_admin() ) {
	require_once THREADGUARD_MODERATION_PLUGIN_DIR . 'includes/class-threadguard-moderation-admin.php';
	add_action( 'init', array( 'Threadguard_Moderation_Admin', 'init' ) );
}
