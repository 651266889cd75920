-- Creates (or replaces) {{.derived_schema}}.f_default_channel_group, the model's GA4-style
-- default channel grouping: one of Direct, Cross-network, Paid Shopping, Paid Search,
-- Paid Social, Paid Video, Display, Paid Other, Organic Shopping, Organic Social,
-- Organic Video, Organic Search, Email, Affiliates, Referral, Audio, SMS,
-- Mobile Push Notifications or Unassigned, from an event's campaign fields (mkt_medium,
-- mkt_source, mkt_campaign) and, when it has none, from its referrer as Snowplow's
-- referer parser classified it (refr_medium, refr_source).
--
-- Our own rules, written from Google's published GA4 channel definitions; docs/
-- channel-grouping.md lists them in evaluation order and says where they differ from GA4.
-- Every comparison ignores case and surrounding spaces; an empty string counts as missing.
-- The first rule that matches wins.
--
-- To use your own grouping, replace this file with a function of the same name and
-- arguments (docs/channel-grouping.md says how); the model only calls it. It is a plain
-- SQL CASE, IMMUTABLE (PostgreSQL inlines it into the queries that call it), and runs
-- unchanged on Redshift as a scalar SQL UDF (arguments as $1 to $5, no FROM). TEXT is
-- Redshift's alias of VARCHAR (256 characters at most in a column): enough for every
-- value passed (atomic.events' mkt_* columns hold 255, refr_* fewer) and returned.
--
-- Source lists (short on purpose; extend them here):
--   search:   google bing yahoo duckduckgo baidu yandex ecosia naver qwant seznam
--             startpage ask
--   social:   facebook fb instagram ig linkedin lnkd.in twitter t.co x pinterest reddit
--             tiktok snapchat threads mastodon bsky bluesky tumblr vk weibo whatsapp
--             telegram discord quora
--   video:    youtube youtu.be vimeo twitch dailymotion wistia
--   shopping: amazon ebay etsy shopify walmart aliexpress alibaba idealo
-- A source matches a list when it is one of its names, optionally as a host name
-- (www.google.com, m.facebook.com, google.co.uk) or with a trailing "!" (Yahoo!).

-- Arguments: $1 mkt_medium, $2 mkt_source, $3 mkt_campaign, $4 refr_medium, $5 refr_source.
CREATE OR REPLACE FUNCTION {{.derived_schema}}.f_default_channel_group(
  TEXT, TEXT, TEXT, TEXT, TEXT)
RETURNS TEXT
IMMUTABLE
AS $$
  SELECT CASE
    -- No campaign data at all: the referrer decides.
    WHEN COALESCE(TRIM($1), '') = '' AND COALESCE(TRIM($2), '') = ''
         AND COALESCE(TRIM($3), '') = '' THEN
      CASE
        WHEN COALESCE(TRIM($4), '') = '' THEN 'Direct'
        WHEN LOWER(TRIM($4)) = 'internal' THEN 'Direct'
        WHEN LOWER(TRIM($5)) ~ '^(.*[.])?(youtube|youtu[.]be|vimeo|twitch|dailymotion|wistia)([.][a-z.]+)?!?$'
          THEN 'Organic Video'
        WHEN LOWER(TRIM($5)) ~ '^(.*[.])?(amazon|ebay|etsy|shopify|walmart|aliexpress|alibaba|idealo)([.][a-z.]+)?!?$'
          THEN 'Organic Shopping'
        WHEN LOWER(TRIM($4)) = 'search' THEN 'Organic Search'
        WHEN LOWER(TRIM($4)) = 'social' THEN 'Organic Social'
        WHEN LOWER(TRIM($4)) = 'email' THEN 'Email'
        WHEN LOWER(TRIM($4)) = 'paid' THEN 'Paid Other'
        ELSE 'Referral'
      END
    -- Campaign data: GA4's rules, in GA4's order.
    WHEN LOWER(TRIM($2)) IN ('(direct)', 'direct')
         AND (COALESCE(TRIM($1), '') = '' OR LOWER(TRIM($1)) IN ('(none)', '(not set)'))
      THEN 'Direct'
    WHEN LOWER($3) LIKE '%cross-network%' THEN 'Cross-network'
    WHEN LOWER(TRIM($1)) ~ '^(.*cp.*|ppc|retargeting|paid.*)$'
         AND (LOWER(TRIM($2)) ~ '^(.*[.])?(amazon|ebay|etsy|shopify|walmart|aliexpress|alibaba|idealo)([.][a-z.]+)?!?$'
              OR LOWER(TRIM($3)) ~ '^(.*(([^a-df-z]|^)shop|shopping).*)$')
      THEN 'Paid Shopping'
    WHEN LOWER(TRIM($1)) ~ '^(.*cp.*|ppc|retargeting|paid.*)$'
         AND LOWER(TRIM($2)) ~ '^(.*[.])?(google|bing|yahoo|duckduckgo|baidu|yandex|ecosia|naver|qwant|seznam|startpage|ask)([.][a-z.]+)?!?$'
      THEN 'Paid Search'
    WHEN LOWER(TRIM($1)) ~ '^(.*cp.*|ppc|retargeting|paid.*)$'
         AND LOWER(TRIM($2)) ~ '^(.*[.])?(facebook|fb|instagram|ig|linkedin|lnkd[.]in|twitter|t[.]co|x|pinterest|reddit|tiktok|snapchat|threads|mastodon|bsky|bluesky|tumblr|vk|weibo|whatsapp|telegram|discord|quora)([.][a-z.]+)?!?$'
      THEN 'Paid Social'
    WHEN LOWER(TRIM($1)) ~ '^(.*cp.*|ppc|retargeting|paid.*)$'
         AND LOWER(TRIM($2)) ~ '^(.*[.])?(youtube|youtu[.]be|vimeo|twitch|dailymotion|wistia)([.][a-z.]+)?!?$'
      THEN 'Paid Video'
    WHEN LOWER(TRIM($1)) IN ('display', 'banner', 'expandable', 'interstitial', 'cpm')
      THEN 'Display'
    WHEN LOWER(TRIM($1)) ~ '^(.*cp.*|ppc|retargeting|paid.*)$' THEN 'Paid Other'
    WHEN LOWER(TRIM($2)) ~ '^(.*[.])?(amazon|ebay|etsy|shopify|walmart|aliexpress|alibaba|idealo)([.][a-z.]+)?!?$'
         OR LOWER(TRIM($3)) ~ '^(.*(([^a-df-z]|^)shop|shopping).*)$'
      THEN 'Organic Shopping'
    WHEN LOWER(TRIM($2)) ~ '^(.*[.])?(facebook|fb|instagram|ig|linkedin|lnkd[.]in|twitter|t[.]co|x|pinterest|reddit|tiktok|snapchat|threads|mastodon|bsky|bluesky|tumblr|vk|weibo|whatsapp|telegram|discord|quora)([.][a-z.]+)?!?$'
         OR LOWER(TRIM($1)) IN ('social', 'social-network', 'social-media', 'sm', 'social network', 'social media')
      THEN 'Organic Social'
    WHEN LOWER(TRIM($2)) ~ '^(.*[.])?(youtube|youtu[.]be|vimeo|twitch|dailymotion|wistia)([.][a-z.]+)?!?$'
         OR LOWER(TRIM($1)) LIKE '%video%'
      THEN 'Organic Video'
    WHEN LOWER(TRIM($2)) ~ '^(.*[.])?(google|bing|yahoo|duckduckgo|baidu|yandex|ecosia|naver|qwant|seznam|startpage|ask)([.][a-z.]+)?!?$'
         OR LOWER(TRIM($1)) = 'organic'
      THEN 'Organic Search'
    WHEN LOWER(TRIM($2)) IN ('email', 'e-mail', 'e_mail', 'e mail')
         OR LOWER(TRIM($1)) IN ('email', 'e-mail', 'e_mail', 'e mail')
      THEN 'Email'
    WHEN LOWER(TRIM($1)) IN ('affiliate', 'affiliates') THEN 'Affiliates'
    WHEN LOWER(TRIM($1)) IN ('referral', 'app', 'link') THEN 'Referral'
    WHEN LOWER(TRIM($1)) = 'audio' THEN 'Audio'
    WHEN LOWER(TRIM($2)) = 'sms' OR LOWER(TRIM($1)) = 'sms' THEN 'SMS'
    WHEN LOWER(TRIM($1)) LIKE '%push' OR LOWER(TRIM($1)) LIKE '%mobile%'
         OR LOWER(TRIM($1)) LIKE '%notification%' OR LOWER(TRIM($2)) = 'firebase'
      THEN 'Mobile Push Notifications'
    ELSE 'Unassigned'
  END
$$ LANGUAGE sql;
