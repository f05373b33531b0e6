#!/usr/bin/env Rscript
# Reference outputs of edgeR 4.5.1's quasi-likelihood pipeline (glmQLFit(legacy = FALSE), the default since
# edgeR 4.2) with limma 3.63.2, for the pbglm parity tests of method="edger" (tests/test_edger4_parity.py).
#
# Run from the repository root (edgeR 4.5.1 / limma 3.63.2 installed in /opt/R-next, see ../shared/r-src/):
#     Rscript tests/reference/make_edger4_reference.R            # all cases of cases.json
#     Rscript tests/reference/make_edger4_reference.R airway     # only the named case(s)
#
# Pipeline (edgeR 4 user's guide), per case and for robust = FALSE and TRUE:
#     y <- DGEList(counts); keep <- filterByExpr(y, design); y <- y[keep, , keep.lib.sizes = FALSE]
#     y <- normLibSizes(y); fit <- glmQLFit(y, design, robust = robust)
#     glmQLFTest(fit, coef | contrast); glmTreat(fit, ..., lfc); glmLRT(fit, ...)
# and, on the cases airway and three_groups, normLibSizes(method = TMMwsp | RLE | upperquartile | none)
# (norm factors, s2.post and the first QL test). A full run first deletes out_edger4/.
# Writes tests/reference/out_edger4/. Numbers rounded to 8 significant digits.

.libPaths(c("/opt/R-next", .libPaths()))
suppressPackageStartupMessages({
  library(jsonlite)
  library(edgeR)
  library(limma)
})
stopifnot(packageVersion("edgeR") == "4.5.1", packageVersion("limma") == "3.63.2")

script_path <- local({
  a <- grep("^--file=", commandArgs(trailingOnly = FALSE), value = TRUE)
  if (length(a)) normalizePath(sub("^--file=", "", a[1])) else normalizePath("tests/reference/make_edger4_reference.R")
})
ref_dir <- dirname(script_path)
repo_dir <- normalizePath(file.path(ref_dir, "..", ".."))
data_dir <- file.path(ref_dir, "data")
bundled_dir <- file.path(repo_dir, "src", "pbglm", "datasets", "data")
out_dir <- file.path(ref_dir, "out_edger4")
dir.create(out_dir, showWarnings = FALSE, recursive = TRUE)

cases <- fromJSON(file.path(ref_dir, "cases.json"), simplifyVector = FALSE)
only <- commandArgs(trailingOnly = TRUE)
if (length(only)) {
  cases <- Filter(function(cs) cs[["case"]] %in% only, cases)
} else {
  unlink(list.files(out_dir, full.names = TRUE))
}

SIG <- 8
round_df <- function(df) {
  for (j in seq_along(df)) if (is.double(df[[j]])) df[[j]] <- signif(df[[j]], SIG)
  df
}
write_csv_gz <- function(df, name) {
  con <- gzfile(file.path(out_dir, name), "w", compression = 9)
  write.csv(round_df(df), con, row.names = FALSE, na = "NA", quote = FALSE)
  close(con)
}
write_json_file <- function(x, name) {
  writeLines(toJSON(x, auto_unbox = TRUE, digits = NA, pretty = TRUE, null = "null", na = "null"),
             file.path(out_dir, name))
}

load_dataset <- function(name) {
  if (name == "airway") {
    counts <- read.csv(file.path(bundled_dir, "airway_counts.csv.gz"), row.names = 1, check.names = FALSE)
    samples <- read.csv(file.path(bundled_dir, "airway_samples.csv"), row.names = 1, check.names = FALSE,
                        stringsAsFactors = FALSE)
  } else if (name == "pasilla") {
    counts <- read.csv(file.path(bundled_dir, "pasilla_counts.csv.gz"), row.names = 1, check.names = FALSE)
    samples <- read.csv(file.path(bundled_dir, "pasilla_samples.csv"), check.names = FALSE, stringsAsFactors = FALSE)
    rownames(samples) <- sub("fb$", "", samples$file)
  } else {
    counts <- read.csv(file.path(data_dir, paste0(name, "_counts.csv.gz")), row.names = 1, check.names = FALSE)
    samples <- read.csv(file.path(data_dir, paste0(name, "_samples.csv")), row.names = 1, check.names = FALSE,
                        stringsAsFactors = FALSE)
  }
  counts <- as.matrix(counts)
  storage.mode(counts) <- "integer"
  samples <- samples[colnames(counts), , drop = FALSE]
  list(counts = counts, samples = samples)
}

build_coldata <- function(case, samples) {
  cd <- data.frame(row.names = rownames(samples))
  for (f in names(case[["levels"]])) cd[[f]] <- factor(as.character(samples[[f]]), levels = unlist(case[["levels"]][[f]]))
  for (v in unlist(case[["numeric"]])) cd[[v]] <- as.numeric(samples[[v]])
  cd
}

edger_contrast <- function(test, design) {
  cn <- colnames(design)
  if (!is.null(test[["contrast"]])) {
    ct <- unlist(test[["contrast"]])
    vec <- setNames(numeric(length(cn)), cn)
    for (k in 2:3) {
      nm <- paste0(ct[1], ct[k])
      if (nm %in% cn) vec[nm] <- if (k == 2) 1 else -1
    }
    return(list(contrast = vec))
  }
  if (!is.null(test[["contrast_vector"]])) {
    cv <- unlist(test[["contrast_vector"]])
    vec <- setNames(numeric(length(cn)), cn)
    vec[names(cv)] <- cv
    return(list(contrast = vec))
  }
  co <- if (!is.null(test[["coef"]])) test[["coef"]] else unlist(test[["coefs"]])
  list(coef = match(co, cn))
}

table_of <- function(res) {
  tab <- topTags(res, n = Inf, sort.by = "none", adjust.method = "BH")$table
  cbind(data.frame(gene = rownames(tab), stringsAsFactors = FALSE), tab)
}

run_case <- function(case, counts, cd, robust, norm_method = "TMM", tests = TRUE) {
  tag <- paste0(case[["case"]], if (robust) "_robust" else "", if (norm_method != "TMM") paste0("_", norm_method) else "")
  t0 <- Sys.time()
  design <- model.matrix(as.formula(case[["design"]]), data = cd)
  y0 <- DGEList(counts, group = NULL)
  keep <- filterByExpr(y0, design)
  y <- y0[keep, , keep.lib.sizes = FALSE]
  y <- normLibSizes(y, method = norm_method)
  fit <- glmQLFit(y, design, robust = robust)

  write.csv(round_df(data.frame(sample = colnames(y), lib_size = y$samples$lib.size, norm_factors = y$samples$norm.factors)),
            file.path(out_dir, sprintf("edger4_%s_samples.csv", tag)), row.names = FALSE, quote = FALSE)
  n <- nrow(counts)
  full <- function(x) {
    out <- rep(NA_real_, n)
    if (length(x) == 1) x <- rep(x, sum(keep))
    out[keep] <- x
    out
  }
  genes <- data.frame(gene = rownames(counts), keep = unname(keep), stringsAsFactors = FALSE)
  genes$AveLogCPM <- full(fit$AveLogCPM)
  if (tests) {
    genes$df_residual_adj <- full(fit$df.residual.adj)
    s2 <- fit$deviance.adj / fit$df.residual.adj
    s2[fit$df.residual.adj < 1e-4] <- 0
    genes$s2 <- full(s2)
    genes$s2_prior <- full(fit$s2.prior)
    genes$df_prior <- full(fit$df.prior)
  }
  genes$s2_post <- full(fit$s2.post)
  write_csv_gz(genes, sprintf("edger4_%s_genes.csv.gz", tag))

  test_info <- list()
  # all tests on the default fit; on robust fits the QL ones (glmLRT does not depend on robust);
  # with another normalisation the first QL test only
  for (test in if (tests) case[["edger"]] else case[["edger"]][1]) {
    ct <- edger_contrast(test, design)
    kinds <- if (identical(test[["kind"]], "treat")) "treat" else if (robust || !tests) "qlf" else c("qlf", "lrt")
    if (identical(test[["kind"]], "lrt") && (robust || !tests)) next
    for (kind in kinds) {
      res <- switch(kind,
        qlf = if (!is.null(ct$coef)) glmQLFTest(fit, coef = ct$coef) else glmQLFTest(fit, contrast = ct$contrast),
        lrt = if (!is.null(ct$coef)) glmLRT(fit, coef = ct$coef) else glmLRT(fit, contrast = ct$contrast),
        treat = if (!is.null(ct$coef)) glmTreat(fit, coef = ct$coef, lfc = test[["lfc"]]) else
          glmTreat(fit, contrast = ct$contrast, lfc = test[["lfc"]]))
      nm <- if (kind != "lrt" && identical(test[["kind"]], "lrt")) NULL else
        if (kind == "lrt" && test[["kind"]] != "lrt") paste0(test[["name"]], "_lrt") else test[["name"]]
      if (is.null(nm)) next
      tab <- table_of(res)
      write_csv_gz(tab, sprintf("edger4_%s_test_%s.csv.gz", tag, nm))
      test_info[[nm]] <- list(spec = test, kind = kind,
        coef = if (is.null(ct$coef)) NULL else as.list(colnames(design)[ct$coef]),
        contrastVectorFull = if (is.null(ct$contrast)) NULL else as.list(ct$contrast),
        columns = colnames(tab), nFDRBelow0.1 = sum(tab$FDR < 0.1))
    }
  }
  params <- list(case = case[["case"]], robust = robust, normMethod = norm_method, samples = colnames(y),
    designColnames = colnames(design), nGenes = n, nKept = sum(keep),
    dispersion = fit$dispersion, topProportion = fit$top.proportion,
    averageQlDispersion = fit$average.ql.dispersion,
    dfPrior = if (length(fit$df.prior) == 1) fit$df.prior else NULL,
    dfPriorRange = range(fit$df.prior), s2PriorRange = range(fit$s2.prior),
    seconds = as.numeric(difftime(Sys.time(), t0, units = "secs")), tests = test_info)
  write_json_file(params, sprintf("edger4_%s_params.json", tag))
  cat(sprintf("  %-28s kept %5d  disp %.6g  aveQL %.6g  (%.1fs)\n", tag, sum(keep), fit$dispersion,
              fit$average.ql.dispersion, params$seconds))
}

for (case in cases) {
  d <- load_dataset(case[["dataset"]])
  cd <- build_coldata(case, d$samples)
  for (robust in c(FALSE, TRUE)) run_case(case, d$counts, cd, robust)
  if (case[["case"]] %in% c("airway", "three_groups")) {
    for (nm in c("TMMwsp", "RLE", "upperquartile", "none")) run_case(case, d$counts, cd, FALSE, nm, tests = FALSE)
  }
}

if (!length(only)) writeLines(c(
  paste("date:", format(Sys.time(), "%Y-%m-%d %H:%M:%S %Z")),
  paste("R:", R.version.string),
  paste("edgeR:", as.character(packageVersion("edgeR"))),
  paste("limma:", as.character(packageVersion("limma"))),
  paste("jsonlite:", as.character(packageVersion("jsonlite"))),
  "command (from the repository root): Rscript tests/reference/make_edger4_reference.R"
), file.path(out_dir, "versions.txt"))
