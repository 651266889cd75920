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
-- Redshift's alias of VARCHAR(256), 256 bytes: enough for every value passed
-- (atomic.events' mkt_* columns hold 255 bytes, refr_* fewer) and returned.
--
-- The source lists are the named templates below, short on purpose: extend them there.
-- A rule's (template "search" "$2") tests whether argument $2 is in the search list:
-- one of its names, or a host name holding one as a label (www.google.com,
-- m.facebook.com, google.co.uk). Each list is written twice: an IN list for the names,
-- and a regular expression for host names that runs only when the source holds a dot.
-- Regular expressions are the costly part (about a microsecond per row each), LIKE and
-- IN a fraction of that; that is also why the paid medium test is written with LIKE.
{{- define "search" -}}
  (LOWER(TRIM({{.}})) IN ('google', 'bing', 'yahoo', 'duckduckgo', 'baidu', 'yandex',
                         'ecosia', 'naver', 'qwant', 'seznam', 'startpage', 'ask', 'yahoo!')
   OR LOWER(TRIM({{.}})) LIKE '%.%' AND LOWER(TRIM({{.}})) ~ '^(.*[.])?(google|bing|yahoo|duckduckgo|baidu|yandex|ecosia|naver|qwant|seznam|startpage|ask)([.][a-z.]+)?$')
{{- end}}
{{- define "social" -}}
  (LOWER(TRIM({{.}})) IN ('facebook', 'fb', 'instagram', 'ig', 'linkedin', 'lnkd.in',
                         'twitter', 't.co', 'x', 'pinterest', 'reddit', 'tiktok', 'snapchat',
                         'threads', 'mastodon', 'bsky', 'bluesky', 'tumblr', 'vk', 'weibo',
                         'whatsapp', 'telegram', 'discord', 'quora')
   OR LOWER(TRIM({{.}})) LIKE '%.%' AND LOWER(TRIM({{.}})) ~ '^(.*[.])?(facebook|fb|instagram|ig|linkedin|lnkd[.]in|twitter|t[.]co|x|pinterest|reddit|tiktok|snapchat|threads|mastodon|bsky|bluesky|tumblr|vk|weibo|whatsapp|telegram|discord|quora)([.][a-z.]+)?$')
{{- end}}
{{- define "video" -}}
  (LOWER(TRIM({{.}})) IN ('youtube', 'youtu.be', 'vimeo', 'twitch', 'dailymotion', 'wistia')
   OR LOWER(TRIM({{.}})) LIKE '%.%' AND LOWER(TRIM({{.}})) ~ '^(.*[.])?(youtube|youtu[.]be|vimeo|twitch|dailymotion|wistia)([.][a-z.]+)?$')
{{- end}}
{{- define "shopping" -}}
  (LOWER(TRIM({{.}})) IN ('amazon', 'ebay', 'etsy', 'shopify', 'walmart', 'aliexpress',
                         'alibaba', 'idealo')
   OR LOWER(TRIM({{.}})) LIKE '%.%' AND LOWER(TRIM({{.}})) ~ '^(.*[.])?(amazon|ebay|etsy|shopify|walmart|aliexpress|alibaba|idealo)([.][a-z.]+)?$')
{{- end}}
{{- /* A shopping campaign, Google's rule: "shopping", or "shop" not after a letter but e. */}}
{{- define "shopping_campaign" -}}
  (LOWER($3) LIKE '%shop%' AND LOWER(TRIM($3)) ~ '^(.*(([^a-df-z]|^)shop|shopping).*)$')
{{- end}}
{{- /* A paid medium: GA4's ^(.*cp.*|ppc|retargeting|paid.*)$, written with LIKE. */}}
{{- define "paid_medium" -}}
  (LOWER(TRIM($1)) LIKE '%cp%' OR LOWER(TRIM($1)) LIKE 'paid%'
   OR LOWER(TRIM($1)) IN ('ppc', 'retargeting'))
{{- end}}
{{- define "display_medium" -}}
  LOWER(TRIM($1)) IN ('display', 'banner', 'expandable', 'interstitial', 'cpm')
{{- end}}

-- Arguments: $1 mkt_medium, $2 mkt_source, $3 mkt_campaign, $4 refr_medium, $5 refr_source.
CREATE OR REPLACE FUNCTION {{.derived_schema}}.f_default_channel_group(
  TEXT, TEXT, TEXT, TEXT, TEXT)
RETURNS TEXT
IMMUTABLE
AS $$
  SELECT CASE
    -- Without campaign data, the referrer decides (rules 1 to 9).
    WHEN COALESCE(TRIM($1), '') = '' AND COALESCE(TRIM($2), '') = ''
         AND COALESCE(TRIM($3), '') = '' THEN
      CASE
        WHEN COALESCE(TRIM($4), '') = '' OR LOWER(TRIM($4)) = 'internal' THEN 'Direct'
        WHEN {{template "video" "$5"}} THEN 'Organic Video'
        WHEN {{template "shopping" "$5"}} THEN 'Organic Shopping'
        WHEN LOWER(TRIM($4)) = 'search' THEN 'Organic Search'
        WHEN LOWER(TRIM($4)) = 'social' THEN 'Organic Social'
        WHEN LOWER(TRIM($4)) = 'email' THEN 'Email'
        WHEN LOWER(TRIM($4)) = 'paid' THEN 'Paid Other'
        ELSE 'Referral'
      END
    -- With campaign data (rules 10 to 28).
    WHEN LOWER(TRIM($2)) IN ('(direct)', 'direct')
         AND (COALESCE(TRIM($1), '') = '' OR LOWER(TRIM($1)) IN ('(none)', '(not set)'))
      THEN 'Direct'
    WHEN LOWER($3) LIKE '%cross-network%' THEN 'Cross-network'
    WHEN {{template "paid_medium"}} THEN
      CASE
        WHEN {{template "shopping" "$2"}} OR {{template "shopping_campaign"}}
          THEN 'Paid Shopping'
        WHEN {{template "search" "$2"}} THEN 'Paid Search'
        WHEN {{template "social" "$2"}} THEN 'Paid Social'
        WHEN {{template "video" "$2"}} THEN 'Paid Video'
        WHEN {{template "display_medium"}} THEN 'Display'
        ELSE 'Paid Other'
      END
    WHEN {{template "display_medium"}} THEN 'Display'
    WHEN {{template "shopping" "$2"}} OR {{template "shopping_campaign"}}
      THEN 'Organic Shopping'
    WHEN {{template "social" "$2"}}
         OR LOWER(TRIM($1)) IN ('social', 'social-network', 'social-media', 'sm',
                                'social network', 'social media')
      THEN 'Organic Social'
    WHEN {{template "video" "$2"}} OR LOWER(TRIM($1)) LIKE '%video%' THEN 'Organic Video'
    WHEN {{template "search" "$2"}} OR LOWER(TRIM($1)) = 'organic' THEN 'Organic Search'
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
