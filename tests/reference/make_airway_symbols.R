#!/usr/bin/env Rscript
# Gene symbols of the bundled airway genes (Ensembl gene IDs -> HGNC symbols), for pbglm.datasets.airway().
#
# Run from the repository root:
#     Rscript tests/reference/make_airway_symbols.R
#
# Reads src/pbglm/datasets/data/airway_counts.csv.gz (its first column: Ensembl gene IDs), maps them with
# AnnotationDbi::mapIds(org.Hs.eg.db, keys, "SYMBOL", "ENSEMBL") (multiVals = "first": the first symbol
# when an ID has several), writes src/pbglm/datasets/data/airway_symbols.csv.gz with the columns
# gene_id, symbol (empty where the ID has no symbol) and prints the versions to record in data/README.md.

suppressPackageStartupMessages({
  library(AnnotationDbi)
  library(org.Hs.eg.db)
})

script_path <- local({
  a <- grep("^--file=", commandArgs(trailingOnly = FALSE), value = TRUE)
  if (length(a)) normalizePath(sub("^--file=", "", a[1])) else normalizePath("tests/reference/make_airway_symbols.R")
})
data_dir <- file.path(dirname(script_path), "..", "..", "src", "pbglm", "datasets", "data")

ids <- read.csv(gzfile(file.path(data_dir, "airway_counts.csv.gz")), colClasses = "character")[[1]]
symbols <- suppressMessages(mapIds(org.Hs.eg.db, keys = ids, column = "SYMBOL", keytype = "ENSEMBL",
                                   multiVals = "first"))
out <- data.frame(gene_id = ids, symbol = unname(symbols))[!is.na(symbols), ]
con <- gzfile(file.path(data_dir, "airway_symbols.csv.gz"), "w", compression = 9)
write.csv(out, con, row.names = FALSE, quote = FALSE)
close(con)

meta <- metadata(org.Hs.eg.db)
cat(sprintf("genes: %d, with a symbol: %d\n", length(ids), nrow(out)))
cat(sprintf("R %s, AnnotationDbi %s, org.Hs.eg.db %s\n", getRversion(), packageVersion("AnnotationDbi"),
            packageVersion("org.Hs.eg.db")))
print(meta[grepl("SOURCEDATE|ENSOURCEURL", meta$name), ])
