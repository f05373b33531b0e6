#!/usr/bin/env Rscript
# Reference outputs of DESeq2 and edgeR (legacy QL pipeline) for the pbglm parity tests.
#
# Run from the repository root (after `python tests/reference/simulate.py`):
#     Rscript tests/reference/make_reference.R            # all cases in cases.json
#     Rscript tests/reference/make_reference.R airway     # only the named case(s)
#
# Reads tests/reference/cases.json, writes tests/reference/out/. See tests/reference/README.md.

suppressPackageStartupMessages({
  library(jsonlite)
  library(DESeq2)
  library(edgeR)
  library(limma)
})

# ---------------------------------------------------------------------------------------------------------------------
# paths
# ---------------------------------------------------------------------------------------------------------------------
script_path <- local({
  a <- grep("^--file=", commandArgs(trailingOnly = FALSE), value = TRUE)
  if (length(a)) normalizePath(sub("^--file=", "", a[1])) else normalizePath("tests/reference/make_reference.R")
})
ref_dir <- dirname(script_path)
repo_dir <- normalizePath(file.path(ref_dir, "..", ".."))
data_dir <- file.path(ref_dir, "data")
bundled_dir <- file.path(repo_dir, "src", "pbglm", "datasets", "data")
out_dir <- file.path(ref_dir, "out")
dir.create(out_dir, showWarnings = FALSE, recursive = TRUE)

cases <- fromJSON(file.path(ref_dir, "cases.json"), simplifyVector = FALSE)
only <- commandArgs(trailingOnly = TRUE)
if (length(only)) {
  unknown <- setdiff(only, vapply(cases, function(cs) cs[["case"]], ""))
  if (length(unknown)) stop("unknown case(s): ", paste(unknown, collapse = ", "))
  cases <- Filter(function(cs) cs[["case"]] %in% only, cases)
} else {
  # full run: start from an empty out/ so that no stale file of a renamed case or test survives
  unlink(list.files(out_dir, pattern = "^(deseq2|edger)_|^versions[.]txt$", full.names = TRUE))
}

SIG <- 8 # significant digits kept in the csv outputs (10 digits would push tests/reference/ to ~29 MB)

# ---------------------------------------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------------------------------------
round_df <- function(df) {
  for (j in seq_along(df)) if (is.double(df[[j]])) df[[j]] <- signif(df[[j]], SIG)
  df
}

write_csv_gz <- function(df, name) {
  con <- gzfile(file.path(out_dir, name), "w", compression = 9)
  write.csv(round_df(df), con, row.names = FALSE, na = "NA", quote = FALSE)
  close(con)
}

write_csv_plain <- function(df, name) {
  write.csv(round_df(df), file.path(out_dir, name), row.names = FALSE, na = "NA", quote = FALSE)
}

write_json_file <- function(x, name) {
  # digits = NA: full precision (15 significant digits); NULL -> {} ; NA -> null
  writeLines(toJSON(x, auto_unbox = TRUE, digits = NA, pretty = TRUE, null = "null", na = "null"),
             file.path(out_dir, name))
}

plain_matrix <- function(mm) {
  out <- matrix(as.numeric(mm), nrow = nrow(mm))
  out
}

# run an expression, collecting messages and warnings (and still printing them)
capture_notes <- function(expr) {
  notes <- character()
  val <- withCallingHandlers(expr,
    message = function(m) {
      notes <<- c(notes, paste0("message: ", trimws(conditionMessage(m))))
      invokeRestart("muffleMessage")
    },
    warning = function(w) {
      notes <<- c(notes, paste0("warning: ", trimws(conditionMessage(w))))
      invokeRestart("muffleWarning")
    })
  list(value = val, notes = notes)
}

# ---------------------------------------------------------------------------------------------------------------------
# data
# ---------------------------------------------------------------------------------------------------------------------
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
  stopifnot(all(colnames(counts) %in% rownames(samples)))
  samples <- samples[colnames(counts), , drop = FALSE] # sample order = count columns
  list(counts = counts, samples = samples)
}

build_coldata <- function(case, samples) {
  cd <- data.frame(row.names = rownames(samples))
  for (f in names(case[["levels"]])) {
    lv <- unlist(case[["levels"]][[f]])
    x <- factor(as.character(samples[[f]]), levels = lv)
    if (anyNA(x)) stop(sprintf("case %s: column %s has values outside the levels given", case[["case"]], f))
    cd[[f]] <- x
  }
  for (v in unlist(case[["numeric"]])) cd[[v]] <- as.numeric(samples[[v]])
  cd
}

# ---------------------------------------------------------------------------------------------------------------------
# DESeq2
# ---------------------------------------------------------------------------------------------------------------------
deseq2_fit_info <- function(dds) {
  fn <- dispersionFunction(dds)
  mm <- attr(dds, "dispModelMatrix")
  if (is.null(mm)) mm <- model.matrix(design(dds), as.data.frame(colData(dds)))
  m <- nrow(mm)
  p <- ncol(mm)
  rep_col <- mcols(dds)$replace
  list(
    fitType = attr(fn, "fitType"),
    dispersionFunctionCoefficients = if (is.null(attr(fn, "coefficients"))) NULL else as.list(attr(fn, "coefficients")),
    dispersionFunctionMean = attr(fn, "mean"),
    dispPriorVar = attr(fn, "dispPriorVar"),
    varLogDispEsts = attr(fn, "varLogDispEsts"),
    expVarLogDisp = if (m > p) trigamma((m - p) / 2) else 0,
    m = m, p = p,
    priorVarMonteCarlo = ((m - p) <= 3) && (m > p),
    replaceColumnPresent = !is.null(rep_col),
    outliersReplaced = !is.null(rep_col) && any(rep_col, na.rm = TRUE),
    nGenesReplaced = if (is.null(rep_col)) 0L else sum(rep_col, na.rm = TRUE),
    nBetaNotConverged = local({
      bc <- if (!is.null(mcols(dds)$betaConv)) mcols(dds)$betaConv else mcols(dds)$fullBetaConv
      if (is.null(bc)) NA else sum(!bc, na.rm = TRUE)
    })
  )
}

deseq2_results <- function(dds, test, rn) {
  args <- list(object = dds)
  if (!is.null(test[["contrast"]])) args$contrast <- unlist(test[["contrast"]])
  if (!is.null(test[["coef"]])) {
    if (!test[["coef"]] %in% rn) stop("coef ", test[["coef"]], " not in resultsNames: ", paste(rn, collapse = ", "))
    args$name <- test[["coef"]]
  }
  if (!is.null(test[["contrast_vector"]])) {
    cv <- unlist(test[["contrast_vector"]])
    stopifnot(all(names(cv) %in% rn))
    vec <- setNames(numeric(length(rn)), rn)
    vec[names(cv)] <- cv
    args$contrast <- unname(vec)
  }
  if (!is.null(test[["lfc_threshold"]])) args$lfcThreshold <- test[["lfc_threshold"]]
  if (!is.null(test[["alt"]])) args$altHypothesis <- test[["alt"]]
  do.call(results, args)
}

run_deseq2 <- function(case, counts, cd) {
  cs <- case[["case"]]
  t0 <- Sys.time()
  dds0 <- DESeqDataSetFromMatrix(counts, cd, design = as.formula(case[["design"]]))
  fits <- list() # cache of DESeq() runs, keyed by the options
  fit_notes <- list()
  get_fit <- function(key, ...) {
    if (is.null(fits[[key]])) {
      r <- capture_notes(DESeq(dds0, ...))
      fits[[key]] <<- r$value
      fit_notes[[key]] <<- r$notes
    }
    fits[[key]]
  }
  dds <- get_fit("wald")
  rn <- resultsNames(dds)
  mc <- mcols(dds)

  # ---- samples
  write_csv_plain(data.frame(sample = colnames(dds), sizeFactor = sizeFactors(dds)),
                  sprintf("deseq2_%s_samples.csv", cs))

  # ---- genes
  col_or_na <- function(x) if (is.null(mc[[x]])) rep(NA, nrow(dds)) else mc[[x]]
  genes <- data.frame(gene = rownames(dds), stringsAsFactors = FALSE)
  for (x in c("baseMean", "baseVar", "allZero", "dispGeneEst", "dispGeneIter", "dispFit", "dispMAP", "dispersion",
              "dispIter", "dispOutlier", "betaConv", "betaIter", "deviance", "maxCooks", "replace")) {
    genes[[x]] <- col_or_na(x)
  }
  for (n in rn) {
    genes[[paste0("coef_", n)]] <- mc[[n]]
    genes[[paste0("se_", n)]] <- mc[[paste0("SE_", n)]]
  }
  write_csv_gz(genes, sprintf("deseq2_%s_genes.csv.gz", cs))

  # ---- replaced count cells (only written when DESeq2 replaced outliers)
  if (!is.null(mc$replace) && any(mc$replace, na.rm = TRUE)) {
    rc <- assays(dds)[["replaceCounts"]]
    oc <- counts(dds0)
    idx <- which(rc != oc, arr.ind = TRUE)
    idx <- idx[order(idx[, 1], idx[, 2]), , drop = FALSE]
    write_csv_plain(data.frame(gene = rownames(dds)[idx[, 1]], sample = colnames(dds)[idx[, 2]],
                               original_count = oc[idx], replaced_count = rc[idx]),
                    sprintf("deseq2_%s_replaced.csv", cs))
  }

  # ---- tests
  test_info <- list()
  for (test in case[["deseq2"]]) {
    if (!is.null(test[["reduced"]])) {
      key <- paste0("lrt:", test[["reduced"]])
      d <- get_fit(key, test = "LRT", reduced = as.formula(test[["reduced"]]))
    } else if (isTRUE(test[["use_t"]])) {
      key <- "wald_useT"
      d <- get_fit(key, useT = TRUE)
    } else {
      key <- "wald"
      d <- dds
    }
    res <- deseq2_results(d, test, rn)
    md <- metadata(res)
    mmd <- attr(d, "dispModelMatrix")
    # rows: all genes in input order
    tab <- data.frame(gene = rownames(res), baseMean = res$baseMean, log2FoldChange = res$log2FoldChange,
                      lfcSE = res$lfcSE, stat = res$stat, pvalue = res$pvalue, padj = res$padj)
    write_csv_gz(tab, sprintf("deseq2_%s_test_%s.csv.gz", cs, test[["name"]]))
    nr <- md$filterNumRej
    nz <- !mcols(d)$allZero
    info <- list(
      spec = test,
      fit = key,
      columnDescriptions = setNames(as.list(mcols(res)$description), colnames(res)),
      alpha = md$alpha,
      lfcThreshold = md$lfcThreshold,
      altHypothesis = if (is.null(test[["alt"]])) "greaterAbs" else test[["alt"]],
      filterThreshold = unname(md$filterThreshold),
      filterThresholdQuantile = names(md$filterThreshold),
      filterTheta = md$filterTheta,
      filterNumRej = if (is.null(nr)) NULL else list(theta = nr[, "theta"], numRej = nr[, "numRej"]),
      cooksCutoff = qf(0.99, ncol(mmd), nrow(mmd) - ncol(mmd)),
      nPvalueNAnonZero = sum(is.na(res$pvalue) & nz),
      nPadjNA = sum(is.na(res$padj)),
      nPadjBelowAlpha = sum(res$padj < md$alpha, na.rm = TRUE),
      tDegreesFreedom = if (is.null(mcols(d)$tDegreesFreedom)) NULL else unique(na.omit(mcols(d)$tDegreesFreedom))
    )
    if (!is.null(test[["contrast_vector"]])) {
      vec <- setNames(numeric(length(rn)), rn)
      vec[names(unlist(test[["contrast_vector"]]))] <- unlist(test[["contrast_vector"]])
      info$contrastVectorFull <- as.list(vec)
    }
    test_info[[test[["name"]]]] <- info
    cat(sprintf("  DESeq2 %-14s %-22s padj<%.2f: %5d\n", cs, test[["name"]], md$alpha, info$nPadjBelowAlpha))
  }

  mm <- model.matrix(design(dds), as.data.frame(colData(dds)))
  params <- c(
    list(case = cs, dataset = case[["dataset"]], design = case[["design"]], samples = colnames(dds),
         resultsNames = rn, modelMatrixColnames = colnames(mm), modelMatrix = plain_matrix(mm),
         nGenes = nrow(dds), nAllZero = sum(mc$allZero)),
    deseq2_fit_info(dds),
    list(otherFits = lapply(fits[names(fits) != "wald"], deseq2_fit_info),
         notes = fit_notes, tests = test_info)
  )
  secs <- as.numeric(difftime(Sys.time(), t0, units = "secs"))
  write_json_file(params, sprintf("deseq2_%s_params.json", cs))
  cat(sprintf("  DESeq2 %s: fitType %s, dispPriorVar %.4g%s, replaced %d genes (%.0fs)\n", cs, params$fitType,
              params$dispPriorVar, if (params$priorVarMonteCarlo) " (Monte Carlo)" else "", params$nGenesReplaced,
              secs))
}

# ---------------------------------------------------------------------------------------------------------------------
# edgeR (legacy glmQLFit of edgeR 3.x)
# ---------------------------------------------------------------------------------------------------------------------
edger_contrast <- function(test, design) {
  cn <- colnames(design)
  if (!is.null(test[["contrast"]])) {
    ct <- unlist(test[["contrast"]])
    f <- ct[1]
    vec <- setNames(numeric(length(cn)), cn)
    for (k in 2:3) {
      nm <- paste0(f, ct[k])
      if (nm %in% cn) vec[nm] <- if (k == 2) 1 else -1
    }
    # a level that is not a column must be the reference level (absorbed in the intercept)
    stopifnot(any(vec != 0))
    return(list(contrast = vec))
  }
  if (!is.null(test[["contrast_vector"]])) {
    cv <- unlist(test[["contrast_vector"]])
    stopifnot(all(names(cv) %in% cn))
    vec <- setNames(numeric(length(cn)), cn)
    vec[names(cv)] <- cv
    return(list(contrast = vec))
  }
  co <- if (!is.null(test[["coef"]])) test[["coef"]] else unlist(test[["coefs"]])
  idx <- match(co, cn)
  if (anyNA(idx)) stop("unknown coefficient(s): ", paste(co[is.na(idx)], collapse = ", "))
  list(coef = idx)
}

run_edger <- function(case, counts, cd) {
  cs <- case[["case"]]
  t0 <- Sys.time()
  design <- model.matrix(as.formula(case[["design"]]), data = cd)
  y0 <- DGEList(counts, group = NULL)
  nf_unfiltered <- calcNormFactors(y0)$samples$norm.factors
  keep <- filterByExpr(y0, design)
  y <- y0[keep, , keep.lib.sizes = FALSE]
  y <- calcNormFactors(y)
  y <- estimateDisp(y, design)
  fit <- glmQLFit(y, design, robust = TRUE)
  fitl <- glmFit(y, design)

  write_csv_plain(data.frame(sample = colnames(y), lib_size = y$samples$lib.size,
                             norm_factors = y$samples$norm.factors, norm_factors_unfiltered = nf_unfiltered),
                  sprintf("edger_%s_samples.csv", cs))

  n <- nrow(counts)
  full <- function(x) {
    out <- rep(NA_real_, n)
    if (length(x) == 1) x <- rep(x, sum(keep))
    out[keep] <- x
    out
  }
  genes <- data.frame(gene = rownames(counts), keep = unname(keep), stringsAsFactors = FALSE)
  genes$AveLogCPM <- full(y$AveLogCPM)
  genes$trended_dispersion <- full(y$trended.dispersion)
  genes$tagwise_dispersion <- full(y$tagwise.dispersion)
  genes$df_residual <- full(fit$df.residual.zeros)
  # raw QL dispersion, exactly as legacy glmQLFit computes it before squeezeVar
  s2 <- fit$deviance / fit$df.residual.zeros
  s2[fit$df.residual.zeros == 0] <- 0
  genes$ql_s2 <- full(pmax(s2, 0))
  genes$s2_prior <- full(fit$var.prior)
  genes$s2_post <- full(fit$var.post)
  genes$df_prior <- full(fit$df.prior)
  for (j in colnames(design)) genes[[paste0("coef_", j)]] <- full(fit$coefficients[, j])
  if (!is.null(fit$unshrunk.coefficients)) {
    for (j in colnames(design)) genes[[paste0("unshrunk_coef_", j)]] <- full(fit$unshrunk.coefficients[, j])
  }
  write_csv_gz(genes, sprintf("edger_%s_genes.csv.gz", cs))

  test_info <- list()
  for (test in case[["edger"]]) {
    ct <- edger_contrast(test, design)
    kind <- if (is.null(test[["kind"]])) "qlf" else test[["kind"]]
    res <- switch(kind,
      qlf = if (!is.null(ct$coef)) glmQLFTest(fit, coef = ct$coef) else glmQLFTest(fit, contrast = ct$contrast),
      treat = if (!is.null(ct$coef)) glmTreat(fit, coef = ct$coef, lfc = test[["lfc"]]) else
        glmTreat(fit, contrast = ct$contrast, lfc = test[["lfc"]]),
      lrt = if (!is.null(ct$coef)) glmLRT(fitl, coef = ct$coef) else glmLRT(fitl, contrast = ct$contrast),
      stop("unknown edgeR test kind ", kind))
    tab <- topTags(res, n = Inf, sort.by = "none", adjust.method = "BH")$table
    tab <- cbind(data.frame(gene = rownames(tab), stringsAsFactors = FALSE), tab)
    write_csv_gz(tab, sprintf("edger_%s_test_%s.csv.gz", cs, test[["name"]]))
    test_info[[test[["name"]]]] <- list(
      spec = test, kind = kind,
      coef = if (is.null(ct$coef)) NULL else as.list(colnames(design)[ct$coef]),
      contrastVectorFull = if (is.null(ct$contrast)) NULL else as.list(ct$contrast),
      comparison = res$comparison,
      columns = colnames(tab),
      dispersionUsed = if (kind == "lrt") "tagwise (glmFit)" else "trended (glmQLFit)",
      nFDRBelow0.05 = sum(tab$FDR < 0.05), nFDRBelow0.1 = sum(tab$FDR < 0.1)
    )
    cat(sprintf("  edgeR  %-14s %-22s FDR<0.05: %5d\n", cs, test[["name"]], test_info[[test[["name"]]]]$nFDRBelow0.05))
  }

  params <- list(
    case = cs, dataset = case[["dataset"]], design = case[["design"]], samples = colnames(y),
    designColnames = colnames(design), modelMatrixColnames = colnames(design), designMatrix = plain_matrix(design),
    nGenes = n, nKept = sum(keep),
    filterByExpr = list(min.count = 10, min.total.count = 15, large.n = 10, min.prop = 0.7),
    commonDispersion = y$common.dispersion,
    priorDf = y$prior.df, priorN = y$prior.n, trendMethod = y$trend.method, span = y$span,
    qlDfPriorRange = range(fit$df.prior), qlRobust = TRUE,
    qlWinsorTailP = c(0.05, 0.1),
    prior.count = fit$prior.count,
    tests = test_info
  )
  secs <- as.numeric(difftime(Sys.time(), t0, units = "secs"))
  write_json_file(params, sprintf("edger_%s_params.json", cs))
  cat(sprintf("  edgeR  %s: %d/%d genes kept, common disp %.4g, prior.df %.4g (%.0fs)\n", cs, sum(keep), n,
              y$common.dispersion, y$prior.df, secs))
}

# ---------------------------------------------------------------------------------------------------------------------
# main
# ---------------------------------------------------------------------------------------------------------------------
t_start <- Sys.time()
for (case in cases) {
  cat(sprintf("case %s (%s, %s)\n", case[["case"]], case[["dataset"]], case[["design"]]))
  d <- load_dataset(case[["dataset"]])
  cd <- build_coldata(case, d$samples)
  run_deseq2(case, d$counts, cd)
  run_edger(case, d$counts, cd)
}

if (!length(only)) {
  pk <- function(p) as.character(packageVersion(p))
  writeLines(c(
    paste("date:", format(Sys.time(), "%Y-%m-%d %H:%M:%S %Z")),
    paste("R:", R.version.string),
    paste("platform:", R.version$platform),
    paste("DESeq2:", pk("DESeq2")),
    paste("edgeR:", pk("edgeR")),
    paste("limma:", pk("limma")),
    paste("glmGamPoi:", pk("glmGamPoi"), "(installed; not used: DESeq2 default fitType is 'parametric')"),
    paste("jsonlite:", pk("jsonlite")),
    if (file.exists(file.path(data_dir, "simulate_versions.txt"))) readLines(file.path(data_dir, "simulate_versions.txt")),
    "",
    "commands (from the repository root):",
    "  python tests/reference/simulate.py",
    "  Rscript tests/reference/make_reference.R",
    "",
    "DESeq2, per case:",
    "  dds <- DESeqDataSetFromMatrix(counts, colData, design = <design>)",
    "  dds <- DESeq(dds)                                   # Wald fit, all defaults",
    "  results(dds, contrast = c(f, lvl, ref) | name = <coef> | contrast = <numeric vector over resultsNames>,",
    "          [lfcThreshold = t, altHypothesis = alt])    # alpha 0.1, independent filtering, Cook's cutoff defaults",
    "  ddsL <- DESeq(dds, test = 'LRT', reduced = <reduced>); results(ddsL)",
    "  ddsT <- DESeq(dds, useT = TRUE); results(ddsT, contrast = ...)",
    "edgeR, per case:",
    "  design <- model.matrix(<design>, colData)",
    "  y <- DGEList(counts, group = NULL)",
    "  norm_factors_unfiltered <- calcNormFactors(y)$samples$norm.factors",
    "  keep <- filterByExpr(y, design); y <- y[keep, , keep.lib.sizes = FALSE]",
    "  y <- calcNormFactors(y); y <- estimateDisp(y, design)",
    "  fit <- glmQLFit(y, design, robust = TRUE)            # legacy QL of edgeR 3.x, trended dispersion",
    "  glmQLFTest(fit, coef = | contrast = ); glmTreat(fit, coef = | contrast = , lfc = )",
    "  fitl <- glmFit(y, design); glmLRT(fitl, coef = | contrast = )   # tagwise dispersion",
    "  topTags(res, n = Inf, sort.by = 'none')$table",
    "",
    sprintf("total runtime of make_reference.R: %.0f s", as.numeric(difftime(Sys.time(), t_start, units = "secs")))
  ), file.path(out_dir, "versions.txt"))
}
cat(sprintf("done in %.0f s\n", as.numeric(difftime(Sys.time(), t_start, units = "secs"))))
