# Writes default_prices.json into a C++ source as a raw string literal.
file(READ ${IN} CONTENT)
file(WRITE ${OUT} "namespace ccmon {\nextern const char kDefaultPricesJson[];\nconst char kDefaultPricesJson[] = R\"ccmon_json(${CONTENT})ccmon_json\";\n}  // namespace ccmon\n")
