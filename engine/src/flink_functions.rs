//! Flink's scalar functions that DataFusion does not have under Flink's name, registered
//! with every engine so that Flink queries run as written.

use datafusion::arrow::compute::kernels::numeric::rem;
use datafusion::arrow::datatypes::DataType;
use datafusion::common::Result as DFResult;
use datafusion::execution::context::SessionContext;
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};

/// `MOD(a, b)`: the remainder of integer division, with the sign of `a` (Flink's `MOD`,
/// SQL's `%`); NULL when `b` is 0 would be silently wrong, so that is an error, as `%` is.
#[derive(Debug, PartialEq, Eq, Hash)]
struct Mod {
    signature: Signature,
}

impl ScalarUDFImpl for Mod {
    fn name(&self) -> &str {
        "mod"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _args: &[DataType]) -> DFResult<DataType> {
        Ok(DataType::Int64)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DFResult<ColumnarValue> {
        let rows = args.number_rows;
        let [a, b] = args.args.as_slice() else {
            return datafusion::common::exec_err!("MOD takes two arguments");
        };
        let (a, b) = (a.to_array(rows)?, b.to_array(rows)?);
        Ok(ColumnarValue::Array(rem(&a, &b)?))
    }
}

/// Registers the functions with `ctx`.
pub fn register(ctx: &SessionContext) {
    ctx.register_udf(ScalarUDF::new_from_impl(Mod {
        signature: Signature::uniform(2, vec![DataType::Int64], Volatility::Immutable),
    }));
}

#[cfg(test)]
mod tests {
    use datafusion::arrow::array::{Array, Int64Array};

    use super::*;

    #[tokio::test]
    async fn mod_is_the_remainder_with_the_sign_of_the_dividend() {
        let ctx = SessionContext::new();
        register(&ctx);
        let batches = ctx
            .sql("SELECT MOD(x, 123) FROM (VALUES (246), (1000), (-7), (CAST(NULL AS BIGINT))) AS t(x)")
            .await
            .expect("plan")
            .collect()
            .await
            .expect("run");
        let values = batches[0]
            .column(0)
            .as_any()
            .downcast_ref::<Int64Array>()
            .expect("BIGINT");
        assert_eq!(values.value(0), 0);
        assert_eq!(values.value(1), 1000 % 123);
        assert_eq!(values.value(2), -7);
        assert!(values.is_null(3));
        let err = ctx
            .sql("SELECT MOD(5, 0)")
            .await
            .expect("plan")
            .collect()
            .await
            .expect_err("division by zero");
        assert!(err.to_string().contains("Divide by zero"), "{err}");
    }
}
