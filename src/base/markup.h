// Escaping text for HTML and XML (the gateway's status page, the agent's launchd plist).
#pragma once

#include <string>
#include <string_view>

namespace ccmon {

// `s` with & < > " ' as the entities &amp; &lt; &gt; &quot; &#39; (valid in HTML and XML, in
// text and in quoted attribute values); every other byte as it is. Escaping twice escapes the
// first escape's '&' again: an entity in `s` is never taken as one.
std::string EscapeMarkup(std::string_view s);

}  // namespace ccmon
