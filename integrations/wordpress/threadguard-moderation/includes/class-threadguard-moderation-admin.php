<?php
/**
 * The settings page (Settings > Threadguard) and the comment list's Threadguard column.
 *
 * @package Threadguard_Moderation
 */

if ( ! defined( 'ABSPATH' ) ) {
	exit;
}

/**
 * Admin screens of the plugin.
 */
class Threadguard_Moderation_Admin {

	/** The settings page's slug. */
	const PAGE = 'threadguard-moderation';

	/**
	 * Whether the hooks are registered.
	 *
	 * @var bool
	 */
	private static $initiated = false;

	/**
	 * Registers the admin hooks (once).
	 */
	public static function init() {
		if ( ! self::$initiated ) {
			self::init_hooks();
		}
	}

	/**
	 * Registers the settings, the page, its link and the comment list column.
	 */
	private static function init_hooks() {
		self::$initiated = true;
		add_action( 'admin_init', array( 'Threadguard_Moderation_Admin', 'register_settings' ) );
		add_action( 'admin_menu', array( 'Threadguard_Moderation_Admin', 'admin_menu' ) );
		add_filter( 'plugin_action_links_threadguard-moderation/threadguard-moderation.php', array( 'Threadguard_Moderation_Admin', 'action_links' ) );
		add_filter( 'manage_edit-comments_columns', array( 'Threadguard_Moderation_Admin', 'comment_columns' ) );
		add_action( 'manage_comments_custom_column', array( 'Threadguard_Moderation_Admin', 'comment_column' ), 10, 2 );
	}

	/**
	 * Registers the option with its sanitizer.
	 */
	public static function register_settings() {
		register_setting(
			'threadguard_moderation',
			Threadguard_Moderation::OPTION,
			array(
				'type'              => 'array',
				'sanitize_callback' => array( 'Threadguard_Moderation_Admin', 'sanitize' ),
				'default'           => array(),
			)
		);
	}

	/**
	 * Cleans the settings form's values.
	 *
	 * @param mixed $input The submitted values.
	 * @return array
	 */
	public static function sanitize( $input ) {
		$input = is_array( $input ) ? $input : array();
		$url   = isset( $input['url'] ) ? esc_url_raw( trim( (string) $input['url'] ), array( 'http', 'https' ) ) : '';
		if ( isset( $input['url'] ) && '' !== trim( (string) $input['url'] ) && '' === $url ) {
			add_settings_error( Threadguard_Moderation::OPTION, 'url', __( 'The hook URL must start with http:// or https://.', 'threadguard-moderation' ) );
		}
		$timeout = isset( $input['timeout'] ) ? (float) $input['timeout'] : 2.0;
		return array(
			'url'        => $url,
			'token'      => isset( $input['token'] ) ? sanitize_text_field( $input['token'] ) : '',
			'timeout'    => min( Threadguard_Moderation::MAX_TIMEOUT, max( 0.1, $timeout ) ),
			'reject_as'  => isset( $input['reject_as'] ) && in_array( $input['reject_as'], array( 'spam', 'trash', 'hook' ), true ) ? $input['reject_as'] : 'spam',
			'on_failure' => isset( $input['on_failure'] ) && 'allow' === $input['on_failure'] ? 'allow' : 'hold',
		);
	}

	/**
	 * Adds Settings > Threadguard.
	 */
	public static function admin_menu() {
		add_options_page(
			__( 'Threadguard Moderation', 'threadguard-moderation' ),
			__( 'Threadguard', 'threadguard-moderation' ),
			'manage_options',
			self::PAGE,
			array( 'Threadguard_Moderation_Admin', 'display_page' )
		);
	}

	/**
	 * A "Settings" link beside the plugin on the Plugins screen.
	 *
	 * @param array $links The plugin's links.
	 * @return array
	 */
	public static function action_links( $links ) {
		$url = admin_url( 'options-general.php?page=' . self::PAGE );
		array_unshift( $links, '<a href="' . esc_url( $url ) . '">' . esc_html__( 'Settings', 'threadguard-moderation' ) . '</a>' );
		return $links;
	}

	/**
	 * Renders the settings page.
	 */
	public static function display_page() {
		if ( ! current_user_can( 'manage_options' ) ) {
			return;
		}
		$settings = Threadguard_Moderation::get_settings();
		$option   = Threadguard_Moderation::OPTION;
		?>
		<div class="wrap">
			<h1><?php echo esc_html( get_admin_page_title() ); ?></h1>
			<p><?php esc_html_e( 'Each new comment is sent to the threadguard moderation hook (threadguard serve), which answers approve, review or reject. Approved comments follow your discussion settings; comments to review wait in the moderation queue; rejected ones go to spam or trash. The hook\'s scores and reasons are kept with each comment.', 'threadguard-moderation' ); ?></p>
			<?php if ( '' === $settings['url'] ) : ?>
				<div class="notice notice-warning inline"><p><?php esc_html_e( 'No hook URL yet: comments are not checked.', 'threadguard-moderation' ); ?></p></div>
			<?php endif; ?>
			<form method="post" action="options.php">
				<?php settings_fields( 'threadguard_moderation' ); ?>
				<table class="form-table" role="presentation">
					<tr>
						<th scope="row"><label for="threadguard-url"><?php esc_html_e( 'Hook URL', 'threadguard-moderation' ); ?></label></th>
						<td>
							<input type="url" class="regular-text code" id="threadguard-url" name="<?php echo esc_attr( $option ); ?>[url]" value="<?php echo esc_attr( $settings['url'] ); ?>" placeholder="http://127.0.0.1:8080" <?php disabled( defined( 'THREADGUARD_URL' ) && THREADGUARD_URL ); ?> />
							<p class="description"><?php esc_html_e( 'Where threadguard serve listens; the plugin posts to its /v1/wordpress endpoint.', 'threadguard-moderation' ); ?></p>
						</td>
					</tr>
					<tr>
						<th scope="row"><label for="threadguard-token"><?php esc_html_e( 'Token', 'threadguard-moderation' ); ?></label></th>
						<td>
							<input type="password" class="regular-text code" id="threadguard-token" name="<?php echo esc_attr( $option ); ?>[token]" value="<?php echo esc_attr( $settings['token'] ); ?>" autocomplete="off" <?php disabled( defined( 'THREADGUARD_TOKEN' ) && THREADGUARD_TOKEN ); ?> />
							<p class="description"><?php esc_html_e( 'The hook\'s bearer token (THREADGUARD_TOKEN where it runs). THREADGUARD_URL and THREADGUARD_TOKEN defined in wp-config.php take precedence.', 'threadguard-moderation' ); ?></p>
						</td>
					</tr>
					<tr>
						<th scope="row"><label for="threadguard-timeout"><?php esc_html_e( 'Timeout (seconds)', 'threadguard-moderation' ); ?></label></th>
						<td>
							<input type="number" class="small-text" id="threadguard-timeout" name="<?php echo esc_attr( $option ); ?>[timeout]" value="<?php echo esc_attr( (string) $settings['timeout'] ); ?>" min="0.1" max="<?php echo esc_attr( (string) Threadguard_Moderation::MAX_TIMEOUT ); ?>" step="0.1" />
							<p class="description"><?php esc_html_e( 'The longest a commenter waits for the hook. Without an answer by then, the comment is handled as set below.', 'threadguard-moderation' ); ?></p>
						</td>
					</tr>
					<tr>
						<th scope="row"><?php esc_html_e( 'Rejected comments', 'threadguard-moderation' ); ?></th>
						<td>
							<fieldset>
								<label><input type="radio" name="<?php echo esc_attr( $option ); ?>[reject_as]" value="spam" <?php checked( $settings['reject_as'], 'spam' ); ?> /> <?php esc_html_e( 'Mark as spam', 'threadguard-moderation' ); ?></label><br />
								<label><input type="radio" name="<?php echo esc_attr( $option ); ?>[reject_as]" value="trash" <?php checked( $settings['reject_as'], 'trash' ); ?> /> <?php esc_html_e( 'Move to the trash', 'threadguard-moderation' ); ?></label><br />
								<label><input type="radio" name="<?php echo esc_attr( $option ); ?>[reject_as]" value="hook" <?php checked( $settings['reject_as'], 'hook' ); ?> /> <?php esc_html_e( 'As the hook says: spam for spam, trash for anything else', 'threadguard-moderation' ); ?></label>
							</fieldset>
						</td>
					</tr>
					<tr>
						<th scope="row"><?php esc_html_e( 'When the hook does not answer', 'threadguard-moderation' ); ?></th>
						<td>
							<fieldset>
								<label><input type="radio" name="<?php echo esc_attr( $option ); ?>[on_failure]" value="hold" <?php checked( $settings['on_failure'], 'hold' ); ?> /> <?php esc_html_e( 'Hold the comment for moderation (fail closed, recommended)', 'threadguard-moderation' ); ?></label><br />
								<label><input type="radio" name="<?php echo esc_attr( $option ); ?>[on_failure]" value="allow" <?php checked( $settings['on_failure'], 'allow' ); ?> /> <?php esc_html_e( 'Let WordPress decide as if the plugin were off (fail open)', 'threadguard-moderation' ); ?></label>
							</fieldset>
						</td>
					</tr>
				</table>
				<?php submit_button(); ?>
			</form>
		</div>
		<?php
	}

	/**
	 * Adds the Threadguard column to the comment list.
	 *
	 * @param array $columns The columns.
	 * @return array
	 */
	public static function comment_columns( $columns ) {
		$columns['threadguard'] = __( 'Threadguard', 'threadguard-moderation' );
		return $columns;
	}

	/**
	 * The Threadguard column: the hook's decision and reasons, or why there was none.
	 *
	 * @param string $column     The column's name.
	 * @param int    $comment_id The comment's id.
	 */
	public static function comment_column( $column, $comment_id ) {
		if ( 'threadguard' !== $column ) {
			return;
		}
		$error = get_comment_meta( $comment_id, Threadguard_Moderation::META_ERROR, true );
		if ( $error ) {
			echo '<span class="threadguard-error">' . esc_html__( 'No answer from the hook (held):', 'threadguard-moderation' ) . ' ' . esc_html( $error ) . '</span>';
			return;
		}
		$decision = get_comment_meta( $comment_id, Threadguard_Moderation::META_DECISION, true );
		if ( ! $decision ) {
			echo '&mdash;';
			return;
		}
		echo '<strong class="threadguard-decision">' . esc_html( $decision ) . '</strong>';
		$reasons = get_comment_meta( $comment_id, Threadguard_Moderation::META_REASONS, true );
		if ( is_array( $reasons ) && $reasons ) {
			echo '<ul class="threadguard-reasons">';
			foreach ( $reasons as $reason ) {
				$words = isset( $reason['words'] ) && is_array( $reason['words'] ) && $reason['words']
					? ': <span class="threadguard-words">&ldquo;' . implode( '&rdquo;, &ldquo;', array_map( 'esc_html', $reason['words'] ) ) . '&rdquo;</span>'
					: '';
				printf(
					'<li>%s %s (%s %s)%s</li>',
					esc_html( $reason['label'] ),
					esc_html( number_format_i18n( (float) $reason['score'], 2 ) ),
					esc_html__( 'threshold', 'threadguard-moderation' ),
					esc_html( number_format_i18n( (float) $reason['threshold'], 2 ) ),
					$words // phpcs:ignore WordPress.Security.EscapeOutput.OutputNotEscaped -- each word escaped above
				);
			}
			echo '</ul>';
		}
	}
}
