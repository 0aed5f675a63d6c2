<?php
/**
 * The comment check: ask the threadguard hook about each new comment.
 *
 * @package Threadguard_Moderation
 */

if ( ! defined( 'ABSPATH' ) ) {
	exit;
}

/**
 * Sends new comments to the hook's `POST /v1/wordpress` endpoint on
 * `pre_comment_approved` and returns what the hook decided; stores the hook's
 * scores and reasons as comment meta once the comment is saved. A comment the
 * hook features (approved, `featured: true`) is kept as decision `feature`, and
 * the theme's comment list gets a `threadguard-featured` class on it.
 */
class Threadguard_Moderation {

	/** Name of the option holding the settings (an array). */
	const OPTION = 'threadguard_moderation_settings';

	/** Comment meta keys. */
	const META_DECISION     = 'threadguard_decision';
	const META_REASONS      = 'threadguard_reasons';
	const META_SCORES       = 'threadguard_scores';
	const META_MODEL        = 'threadguard_model_version';
	const META_REQUEST      = 'threadguard_request_id';
	const META_ERROR        = 'threadguard_error';
	const META_FEATURED     = 'threadguard_featured';
	const META_CONSTRUCTIVE = 'threadguard_constructive';

	/** The class `comment_class()` adds to a featured comment, for themes to style. */
	const FEATURED_CLASS = 'threadguard-featured';

	/** Longest wait for the hook that the settings accept, in seconds. */
	const MAX_TIMEOUT = 10;

	/**
	 * Whether the hooks are registered.
	 *
	 * @var bool
	 */
	private static $initiated = false;

	/**
	 * What the hook said about the comment being posted, until it is saved.
	 *
	 * @var array|null
	 */
	private static $last_result = null;

	/**
	 * The timeout of the request in progress (seconds), for the connect timeout.
	 *
	 * @var float
	 */
	private static $request_timeout = 2.0;

	/**
	 * Registers the plugin's hooks (once).
	 */
	public static function init() {
		if ( ! self::$initiated ) {
			self::init_hooks();
		}
	}

	/**
	 * Registers the filter and the actions.
	 */
	private static function init_hooks() {
		self::$initiated = true;
		// After WordPress's own checks (priority 10), so a comment it already refused is left alone.
		add_filter( 'pre_comment_approved', array( 'Threadguard_Moderation', 'check_comment' ), 20, 2 );
		add_action( 'comment_post', array( 'Threadguard_Moderation', 'save_result' ), 10, 1 );
		add_filter( 'comment_class', array( 'Threadguard_Moderation', 'comment_class' ), 10, 3 );
	}

	/**
	 * The settings, with defaults; `THREADGUARD_URL` and `THREADGUARD_TOKEN` defined in
	 * wp-config.php take precedence over the settings page.
	 *
	 * @return array{url: string, token: string, timeout: float, reject_as: string, on_failure: string}
	 */
	public static function get_settings() {
		$saved    = get_option( self::OPTION, array() );
		$settings = wp_parse_args(
			is_array( $saved ) ? $saved : array(),
			array(
				'url'        => '',
				'token'      => '',
				'timeout'    => 2.0,
				'reject_as'  => 'spam',
				'on_failure' => 'hold',
			)
		);
		if ( defined( 'THREADGUARD_URL' ) && THREADGUARD_URL ) {
			$settings['url'] = THREADGUARD_URL;
		}
		if ( defined( 'THREADGUARD_TOKEN' ) && THREADGUARD_TOKEN ) {
			$settings['token'] = THREADGUARD_TOKEN;
		}
		$settings['timeout'] = min( self::MAX_TIMEOUT, max( 0.1, (float) $settings['timeout'] ) );
		return $settings;
	}

	/**
	 * Filter `pre_comment_approved`: the comment's status as the hook decides it.
	 *
	 * Only ever stricter than WordPress: a comment WordPress already refused (spam,
	 * trash, an error) is left alone, and when the hook approves, WordPress's own
	 * status stands (e.g. "must be manually approved"). When the hook cannot answer
	 * within the timeout, the comment is held (0) unless the settings say to let
	 * WordPress decide.
	 *
	 * @param int|string|WP_Error $approved    1, 0, 'spam', 'trash' or a WP_Error.
	 * @param array               $commentdata The comment's data.
	 * @return int|string|WP_Error
	 */
	public static function check_comment( $approved, $commentdata ) {
		self::$last_result = null;
		if ( is_wp_error( $approved ) || 'spam' === $approved || 'trash' === $approved ) {
			return $approved;
		}
		$settings = self::get_settings();
		if ( '' === $settings['url'] ) {
			return $approved; // Not configured yet: the settings page says so.
		}

		$result            = self::ask_hook( $commentdata, $settings );
		self::$last_result = $result;

		if ( isset( $result['error'] ) ) {
			return 'allow' === $settings['on_failure'] ? $approved : 0;
		}
		switch ( $result['decision'] ) {
			case 'approve':
				return $approved;
			case 'review':
				return 0;
			case 'reject':
				if ( 'hook' === $settings['reject_as'] ) {
					return 'spam' === $result['approved'] ? 'spam' : 'trash';
				}
				return 'trash' === $settings['reject_as'] ? 'trash' : 'spam';
		}
		return 0;
	}

	/**
	 * The request body for `POST /v1/wordpress`: the comment's fields, with the post's and
	 * the parent comment's text so the hook can read the comment in its context.
	 *
	 * @param array $commentdata The comment's data.
	 * @return array
	 */
	public static function request_body( $commentdata ) {
		$post_id   = isset( $commentdata['comment_post_ID'] ) ? (int) $commentdata['comment_post_ID'] : 0;
		$parent_id = isset( $commentdata['comment_parent'] ) ? (int) $commentdata['comment_parent'] : 0;
		$post      = $post_id ? get_post( $post_id ) : null;
		$parent    = $parent_id ? get_comment( $parent_id ) : null;
		return array(
			'comment_content'      => isset( $commentdata['comment_content'] ) ? (string) $commentdata['comment_content'] : '',
			'comment_author'       => isset( $commentdata['comment_author'] ) ? (string) $commentdata['comment_author'] : '',
			'comment_author_email' => isset( $commentdata['comment_author_email'] ) ? (string) $commentdata['comment_author_email'] : '',
			'comment_author_url'   => isset( $commentdata['comment_author_url'] ) ? (string) $commentdata['comment_author_url'] : '',
			'comment_type'         => empty( $commentdata['comment_type'] ) ? 'comment' : (string) $commentdata['comment_type'],
			'comment_parent'       => $parent_id,
			'comment_post_ID'      => $post_id,
			'user_id'              => isset( $commentdata['user_id'] ) ? (int) $commentdata['user_id'] : 0,
			'post_title'           => $post ? (string) $post->post_title : '',
			'post_content'         => $post ? wp_trim_words( $post->post_content, 300, '' ) : '',
			'post_url'             => $post ? (string) get_permalink( $post ) : '',
			'parent_content'       => $parent ? (string) $parent->comment_content : null,
		);
	}

	/**
	 * Asks the hook; never waits longer than the timeout to connect or between bytes.
	 *
	 * @param array $commentdata The comment's data.
	 * @param array $settings    The plugin's settings.
	 * @return array The hook's answer (`approved`, `decision`, `reasons`, `scores`, ...),
	 *               or `array( 'error' => '...' )` when there is none.
	 */
	public static function ask_hook( $commentdata, $settings ) {
		$body = wp_json_encode( self::request_body( $commentdata ) );
		if ( false === $body ) {
			return array( 'error' => 'the comment could not be encoded as JSON' );
		}
		$url     = untrailingslashit( $settings['url'] ) . '/v1/wordpress';
		$headers = array( 'Content-Type' => 'application/json' );
		if ( '' !== $settings['token'] ) {
			$headers['Authorization'] = 'Bearer ' . $settings['token'];
		}

		// WordPress passes only `timeout` to its HTTP library, whose connect timeout is 10 s:
		// bound the connection by the same timeout.
		self::$request_timeout = $settings['timeout'];
		add_action( 'requests-requests.before_request', array( 'Threadguard_Moderation', 'limit_connect_timeout' ), 10, 5 );
		$started  = microtime( true );
		$response = wp_remote_post(
			$url,
			array(
				'timeout'     => $settings['timeout'],
				'redirection' => 0,
				'headers'     => $headers,
				'body'        => $body,
				'user-agent'  => 'threadguard-moderation/' . THREADGUARD_MODERATION_VERSION . '; ' . home_url( '/' ),
			)
		);
		remove_action( 'requests-requests.before_request', array( 'Threadguard_Moderation', 'limit_connect_timeout' ), 10 );
		$elapsed = microtime( true ) - $started;

		if ( is_wp_error( $response ) ) {
			return array( 'error' => sprintf( 'no answer after %.1f s: %s', $elapsed, $response->get_error_message() ) );
		}
		$code   = (int) wp_remote_retrieve_response_code( $response );
		$answer = json_decode( wp_remote_retrieve_body( $response ), true );
		if ( 200 !== $code ) {
			$detail = is_array( $answer ) && isset( $answer['detail'] ) && is_string( $answer['detail'] ) ? $answer['detail'] : '';
			return array( 'error' => trim( sprintf( 'the hook answered %d %s', $code, $detail ) ) );
		}
		if ( ! is_array( $answer ) || ! isset( $answer['decision'] ) || ! in_array( $answer['decision'], array( 'approve', 'review', 'reject' ), true ) ) {
			return array( 'error' => 'the hook answered without a decision' );
		}
		return $answer;
	}

	/**
	 * Action `requests-requests.before_request`: the connect timeout of the hook's request.
	 *
	 * @param string $url     The URL.
	 * @param array  $headers The headers.
	 * @param mixed  $data    The body.
	 * @param string $type    The method.
	 * @param array  $options The Requests options (changed in place).
	 */
	public static function limit_connect_timeout( &$url, &$headers, &$data, &$type, &$options ) {
		$options['connect_timeout'] = self::$request_timeout;
	}

	/**
	 * Action `comment_post`: keeps the hook's answer with the saved comment.
	 *
	 * @param int $comment_id The new comment's id.
	 */
	public static function save_result( $comment_id ) {
		$result            = self::$last_result;
		self::$last_result = null;
		if ( null === $result ) {
			return;
		}
		if ( isset( $result['error'] ) ) {
			update_comment_meta( $comment_id, self::META_ERROR, sanitize_text_field( $result['error'] ) );
			return;
		}
		// The hook answers `approve` with `featured: true` for a comment its policy features
		// (WordPress has no such status); the meta keeps the hook's own word for it.
		$featured = isset( $result['featured'] ) && true === $result['featured'];
		update_comment_meta( $comment_id, self::META_DECISION, $featured ? 'feature' : sanitize_key( $result['decision'] ) );
		if ( $featured ) {
			update_comment_meta( $comment_id, self::META_FEATURED, 1 );
		}
		if ( isset( $result['constructive'] ) && is_array( $result['constructive'] ) ) {
			update_comment_meta( $comment_id, self::META_CONSTRUCTIVE, self::clean_scores( $result['constructive'] ) );
		}
		update_comment_meta( $comment_id, self::META_REASONS, self::clean_reasons( isset( $result['reasons'] ) ? $result['reasons'] : array() ) );
		update_comment_meta( $comment_id, self::META_SCORES, self::clean_scores( isset( $result['scores'] ) ? $result['scores'] : array() ) );
		if ( isset( $result['model_version'] ) && is_string( $result['model_version'] ) ) {
			update_comment_meta( $comment_id, self::META_MODEL, sanitize_text_field( $result['model_version'] ) );
		}
		if ( isset( $result['request_id'] ) && is_string( $result['request_id'] ) ) {
			update_comment_meta( $comment_id, self::META_REQUEST, sanitize_text_field( $result['request_id'] ) );
		}
	}

	/**
	 * Whether the hook featured the comment.
	 *
	 * @param int|WP_Comment|null $comment The comment (default: the current one).
	 * @return bool
	 */
	public static function is_featured( $comment = null ) {
		$comment = get_comment( $comment );
		return $comment ? (bool) get_comment_meta( (int) $comment->comment_ID, self::META_FEATURED, true ) : false;
	}

	/**
	 * Filter `comment_class`: adds `threadguard-featured` to a featured comment's classes,
	 * so a theme can show it (e.g. `.threadguard-featured { border-left: 4px solid; }`).
	 *
	 * @param string[]        $classes    The comment's classes.
	 * @param string|string[] $css_class  Classes the theme asked for.
	 * @param int             $comment_id The comment's id.
	 * @return string[]
	 */
	public static function comment_class( $classes, $css_class, $comment_id ) {
		if ( $comment_id && self::is_featured( $comment_id ) ) {
			$classes[] = self::FEATURED_CLASS;
		}
		return $classes;
	}

	/**
	 * The reasons as label, score, threshold, action and the words the model flagged
	 * (the `text` of each span behind the reason, when the hook gives spans).
	 *
	 * @param mixed $reasons The hook's `reasons`.
	 * @return array
	 */
	private static function clean_reasons( $reasons ) {
		$clean = array();
		foreach ( is_array( $reasons ) ? $reasons : array() as $reason ) {
			if ( ! is_array( $reason ) || ! isset( $reason['label'], $reason['score'] ) ) {
				continue;
			}
			$item = array(
				'label'     => sanitize_key( $reason['label'] ),
				'score'     => (float) $reason['score'],
				'threshold' => isset( $reason['threshold'] ) ? (float) $reason['threshold'] : null,
				'action'    => isset( $reason['action'] ) ? sanitize_key( $reason['action'] ) : '',
			);
			if ( isset( $reason['spans'] ) && is_array( $reason['spans'] ) ) {
				$words = array();
				foreach ( $reason['spans'] as $span ) {
					if ( is_array( $span ) && isset( $span['text'] ) && is_string( $span['text'] ) ) {
						$words[] = sanitize_text_field( function_exists( 'mb_substr' ) ? mb_substr( $span['text'], 0, 100 ) : substr( $span['text'], 0, 100 ) );
					}
				}
				$item['words'] = $words;
			}
			$clean[] = $item;
		}
		return $clean;
	}

	/**
	 * The scores as label => probability.
	 *
	 * @param mixed $scores The hook's `scores`.
	 * @return array
	 */
	private static function clean_scores( $scores ) {
		$clean = array();
		foreach ( is_array( $scores ) ? $scores : array() as $label => $score ) {
			if ( is_numeric( $score ) ) {
				$clean[ sanitize_key( $label ) ] = (float) $score;
			}
		}
		return $clean;
	}
}
